"""Tests for ivif_ros.ros.conversions with real rclpy and rosbags message classes."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ivif_ros.ros.conversions import (
    SUPPORTED_ENCODINGS,
    ConversionError,
    array_to_image,
    compressed_to_array,
    image_to_array,
    to_bgr,
)

_SHAPES = {  # encoding -> (dtype, channels)
    "mono8": (np.uint8, 1),
    "8UC1": (np.uint8, 1),
    "mono16": (np.uint16, 1),
    "16UC1": (np.uint16, 1),
    "32FC1": (np.float32, 1),
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "bayer_rggb8": (np.uint8, 1),
    "bayer_bggr8": (np.uint8, 1),
    "bayer_gbrg8": (np.uint8, 1),
    "bayer_grbg8": (np.uint8, 1),
    "yuv422": (np.uint8, 2),
    "yuv422_yuy2": (np.uint8, 2),
    "yuyv": (np.uint8, 2),
}


def _sample(encoding: str, height: int = 6, width: int = 5) -> np.ndarray:
    dtype, channels = _SHAPES[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    if dtype == np.float32:
        return (values * 0.25 - 3.0).astype(np.float32)
    return (values * 977 % np.iinfo(dtype).max).astype(dtype)


def _padded_message(array: np.ndarray, encoding: str, pad: int, big_endian: bool) -> SimpleNamespace:
    """A hand-built message with `pad` bytes after every row and the requested byte order."""
    order = ">" if big_endian else "<"
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(order)).view(np.uint8)
    rows = raw.reshape(array.shape[0], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return SimpleNamespace(
        height=array.shape[0], width=array.shape[1], encoding=encoding, step=padded.shape[1],
        is_bigendian=int(big_endian), data=padded.tobytes(),
    )


class TestRoundTrip:
    def test_supported_encodings_are_the_documented_set(self) -> None:
        assert set(SUPPORTED_ENCODINGS) == set(_SHAPES)

    @pytest.mark.parametrize("encoding", sorted(_SHAPES))
    def test_rclpy_round_trip(self, encoding: str) -> None:
        array = _sample(encoding)
        header = Header(frame_id="cam")
        header.stamp.sec, header.stamp.nanosec = 12, 345
        msg = array_to_image(array, encoding, header=header)
        assert isinstance(msg, Image) and msg.encoding == encoding
        assert msg.step == array.shape[1] * array.itemsize * (1 if array.ndim == 2 else array.shape[2])
        assert msg.header.frame_id == "cam" and msg.header.stamp.nanosec == 345
        back = image_to_array(msg)
        assert back.shape == array.shape and back.dtype == array.dtype
        np.testing.assert_array_equal(back, array)

    @pytest.mark.parametrize("encoding", sorted(_SHAPES))
    def test_serialized_round_trip(self, encoding: str) -> None:
        from rclpy.serialization import deserialize_message, serialize_message

        array = _sample(encoding)
        received = deserialize_message(serialize_message(array_to_image(array, encoding)), Image)
        np.testing.assert_array_equal(image_to_array(received), array)

    @pytest.mark.parametrize("encoding", sorted(_SHAPES))
    @pytest.mark.parametrize("big_endian", [False, True])
    def test_padded_step_and_byte_order(self, encoding: str, big_endian: bool) -> None:
        array = _sample(encoding)
        back = image_to_array(_padded_message(array, encoding, pad=3, big_endian=big_endian))
        assert back.dtype.isnative and back.dtype == array.dtype
        np.testing.assert_array_equal(back, array)

    def test_rosbags_message_class(self) -> None:
        from rosbags.typesys import Stores, get_typestore

        store = get_typestore(Stores.ROS2_JAZZY)
        image_cls = store.types["sensor_msgs/msg/Image"]
        array = _sample("mono16")
        msg = array_to_image(array, "mono16", msg_cls=image_cls)
        assert isinstance(msg.data, np.ndarray) and msg.data.dtype == np.uint8
        raw = store.serialize_cdr(msg, "sensor_msgs/msg/Image")
        np.testing.assert_array_equal(image_to_array(store.deserialize_cdr(raw, "sensor_msgs/msg/Image")), array)


class TestZeroCopy:
    def test_native_read_is_a_view_on_the_message_buffer(self) -> None:
        array = _sample("bgr8")
        msg = _padded_message(array, "bgr8", pad=4, big_endian=False)
        view = image_to_array(msg)
        assert not view.flags.owndata and np.shares_memory(view, np.frombuffer(msg.data, np.uint8))

    def test_missing_padding_on_last_row_is_accepted(self) -> None:
        array = _sample("mono16")
        msg = _padded_message(array, "mono16", pad=2, big_endian=False)
        msg.data = msg.data[:-2]
        np.testing.assert_array_equal(image_to_array(msg), array)


class TestBadMessages:
    def _msg(self, **overrides: object) -> SimpleNamespace:
        fields = dict(height=4, width=4, encoding="mono8", step=4, is_bigendian=0, data=bytes(16))
        fields.update(overrides)
        return SimpleNamespace(**fields)

    @pytest.mark.parametrize("encoding", ["bayer_rggb16", "nv12", "", "16UC3"])
    def test_unsupported_encoding_is_named(self, encoding: str) -> None:
        with pytest.raises(ConversionError, match="unsupported encoding") as caught:
            image_to_array(self._msg(encoding=encoding))
        assert caught.value.kind == "encoding"

    @pytest.mark.parametrize("height,width", [(0, 4), (4, 0), (0, 0)])
    def test_zero_dimensions(self, height: int, width: int) -> None:
        with pytest.raises(ConversionError, match="size"):
            image_to_array(self._msg(height=height, width=width))

    def test_step_smaller_than_row(self) -> None:
        with pytest.raises(ConversionError, match="step 3"):
            image_to_array(self._msg(step=3, data=bytes(12)))

    @pytest.mark.parametrize("length", [0, 15, 17, 32])
    def test_data_length_mismatch(self, length: int) -> None:
        with pytest.raises(ConversionError, match=f"data has {length} bytes") as caught:
            image_to_array(self._msg(data=bytes(length)))
        assert caught.value.kind == "data"

    def test_huge_dimensions_with_short_data(self) -> None:
        with pytest.raises(ConversionError):
            image_to_array(self._msg(height=100_000, width=100_000, step=100_000, data=bytes(16)))
        with pytest.raises(ConversionError, match="data has 16 bytes"):
            image_to_array(self._msg(height=4000, width=4000, step=4000, data=bytes(16)))

    def test_array_that_does_not_fit_the_encoding(self) -> None:
        with pytest.raises(ConversionError, match="shape"):
            array_to_image(np.zeros((4, 4), np.uint8), "bgr8")
        with pytest.raises(ConversionError, match="dtype"):
            array_to_image(np.zeros((4, 4), np.uint8), "mono16")
        with pytest.raises(ConversionError, match="unsupported encoding"):
            array_to_image(np.zeros((4, 4), np.uint8), "bayer_rggb16")


class TestToBgr:
    @pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
    def test_colour_becomes_bgr(self, encoding: str) -> None:
        bgr = np.dstack([np.full((2, 3), value, np.uint8) for value in (10, 20, 30)])
        order = {"rgb8": [2, 1, 0], "bgr8": [0, 1, 2], "rgba8": [2, 1, 0], "bgra8": [0, 1, 2]}[encoding]
        array = bgr[..., order]
        if encoding.endswith("a8"):
            array = np.dstack([array, np.full((2, 3), 255, np.uint8)])
        np.testing.assert_array_equal(to_bgr(array, encoding), bgr)

    @pytest.mark.parametrize("encoding", ["mono8", "mono16", "32FC1"])
    def test_mono_unchanged(self, encoding: str) -> None:
        array = _sample(encoding)
        assert to_bgr(array, encoding) is array


class TestCompressed:
    def test_png_colour_and_16bit(self) -> None:
        bgr = _sample("bgr8")
        msg = CompressedImage(format="bgr8; png compressed bgr8", data=cv2.imencode(".png", bgr)[1].tobytes())
        np.testing.assert_array_equal(compressed_to_array(msg), bgr)
        mono16 = _sample("mono16")
        msg = CompressedImage(format="mono16; png compressed", data=cv2.imencode(".png", mono16)[1].tobytes())
        np.testing.assert_array_equal(compressed_to_array(msg), mono16)

    def test_16bit_colour_png_becomes_bgr8(self) -> None:
        bgr16 = (_sample("bgr8").astype(np.uint16) * 257)
        msg = CompressedImage(format="bgr16; png compressed", data=cv2.imencode(".png", bgr16)[1].tobytes())
        decoded = compressed_to_array(msg)
        assert decoded.dtype == np.uint8 and decoded.shape == bgr16.shape
        np.testing.assert_array_equal(decoded, _sample("bgr8"))

    def test_garbage_and_empty(self) -> None:
        with pytest.raises(ConversionError, match="cannot decode"):
            compressed_to_array(CompressedImage(format="jpeg", data=b"not a jpeg"))
        with pytest.raises(ConversionError, match="no data"):
            compressed_to_array(CompressedImage(format="jpeg", data=b""))
