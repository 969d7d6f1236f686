"""Bounded decoding: image headers are checked against max_pixels before anything is decoded."""
from __future__ import annotations

import resource

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from ivif_ros.core.image_header import HeaderError, check_dimensions, image_dimensions
from ivif_ros.ros.conversions import ConversionError, array_to_image, compressed_to_array, image_to_array
from ivif_ros.ros.faults import jpeg_header_bomb, png_header_bomb

MAX_PIXELS = 4096 * 4096


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@pytest.mark.parametrize("extension, flags", [(".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])])
@pytest.mark.parametrize("shape", [(37, 91), (64, 48, 3)])
def test_dimensions_from_real_headers(extension: str, flags: list[int], shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    ok, encoded = cv2.imencode(extension, image, flags)
    assert ok
    assert image_dimensions(encoded.tobytes()) == (shape[1], shape[0])
    assert compressed_to_array(CompressedImage(format="x", data=encoded.tobytes()), MAX_PIXELS).shape[:2] == shape[:2]


def test_sixteen_bit_png_and_compressed_depth_header() -> None:
    depth = np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 20
    ok, encoded = cv2.imencode(".png", depth)
    assert ok
    msg = CompressedImage(format="16UC1; compressedDepth png", data=bytes(12) + encoded.tobytes())
    np.testing.assert_array_equal(compressed_to_array(msg, MAX_PIXELS), depth)


@pytest.mark.parametrize("data", [png_header_bomb(40_000, 40_000), png_header_bomb(30_000, 30_000), jpeg_header_bomb()])
def test_header_bombs_are_refused_before_decoding(data: bytes) -> None:
    before = _peak_rss_mb()
    with pytest.raises(ConversionError, match="max_pixels"):
        compressed_to_array(CompressedImage(format="png", data=data), MAX_PIXELS)
    assert _peak_rss_mb() - before < 100  # decoding 30000x30000 would take 900 MB


def test_decoder_errors_become_conversion_errors() -> None:
    # Without a max_pixels limit OpenCV's own size check raises cv2.error, which must not escape.
    with pytest.raises(ConversionError, match="cannot decode"):
        compressed_to_array(CompressedImage(format="png", data=png_header_bomb(40_000, 40_000)))


@pytest.mark.parametrize(
    "data, message",
    [(b"BM" + bytes(60), "unknown signature"), (b"\x89PNG\r\n\x1a\n" + bytes(4), "IHDR"),
     (b"\xff\xd8\xff\xda\x00\x04ab", "scan data"), (b"\xff\xd8\xff\xe0\x00\x10", "start-of-frame"),
     (png_header_bomb(0, 10), "empty")],
)
def test_unreadable_or_empty_headers(data: bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        check_dimensions(data, MAX_PIXELS)


def test_png_cut_after_its_header_is_a_conversion_error() -> None:
    ok, encoded = cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(ConversionError):
        compressed_to_array(CompressedImage(format="png", data=encoded.tobytes()[:80]), MAX_PIXELS)


def test_raw_frame_over_max_pixels_is_refused_before_reading_data() -> None:
    msg = array_to_image(np.zeros((100, 120), np.uint8), "mono8")
    assert image_to_array(msg, max_pixels=12_000).shape == (100, 120)
    with pytest.raises(ConversionError, match="max_pixels"):
        image_to_array(msg, max_pixels=11_999)
    padded = Image(height=100, width=120, encoding="mono8", step=120 + 10_000, data=bytes(100 * 10_120))
    with pytest.raises(ConversionError, match="padding"):
        image_to_array(padded, max_pixels=MAX_PIXELS)
    claim = Image(height=1 << 20, width=1 << 20, encoding="rgb8", step=3 << 20, data=bytes(16))
    with pytest.raises(ConversionError, match="max_pixels"):
        image_to_array(claim, max_pixels=MAX_PIXELS)
