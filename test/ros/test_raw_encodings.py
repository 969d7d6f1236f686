"""Raw camera encodings (Bayer mosaics, 4:2:2 YUV) against independent reference encoders."""
from __future__ import annotations

import numpy as np
import pytest
from camera_publisher import BAYER_PATTERNS, CHANNEL

from ivif_ros.ros.conversions import ConversionError, array_to_image, image_to_array, to_bgr


def smooth_bgr(height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth colour image with distinct, slowly varying B, G and R (demosaicing is exact-ish there)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    blue = 40 + 150 * x / width
    green = 90 + 60 * np.sin(y / height * np.pi)
    red = 200 - 120 * y / height
    return np.clip(np.stack([blue, green, red], axis=-1), 0, 255).round().astype(np.uint8)


def mosaic(bgr: np.ndarray, pattern: tuple[tuple[str, str], tuple[str, str]]) -> np.ndarray:
    """Sample a BGR image through a colour-filter array."""
    result = np.empty(bgr.shape[:2], np.uint8)
    for row in range(2):
        for column in range(2):
            result[row::2, column::2] = bgr[row::2, column::2, CHANNEL[pattern[row][column]]]
    return result


@pytest.mark.parametrize("encoding", sorted(BAYER_PATTERNS))
def test_bayer_frames_demosaic_to_the_original_colours(encoding: str) -> None:
    original = smooth_bgr()
    msg = array_to_image(mosaic(original, BAYER_PATTERNS[encoding]), encoding)
    bgr = to_bgr(image_to_array(msg), encoding)
    assert bgr.shape == original.shape and bgr.dtype == np.uint8
    inner = (slice(2, -2), slice(2, -2))
    error = np.abs(bgr[inner].astype(int) - original[inner].astype(int))
    assert error.mean() < 2.0 and error.max() <= 8, (encoding, error.mean(), error.max())
    # Any other pattern swaps red and blue or shifts green: clearly wrong colours.
    for other in set(BAYER_PATTERNS) - {encoding}:
        wrong = to_bgr(image_to_array(msg), other)
        assert np.abs(wrong[inner].astype(int) - original[inner].astype(int)).mean() > 10, other


def bt601_video_range(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr (BT.601, 16..235 / 16..240) as floats."""
    b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
    luma = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return luma, cb, cr


def pack_422(bgr: np.ndarray, order: str) -> np.ndarray:
    """4:2:2 packing with chroma averaged over each pixel pair; `order` is "uyvy" or "yuyv"."""
    luma, cb, cr = bt601_video_range(bgr)
    cb_pair = (cb[:, 0::2] + cb[:, 1::2]) / 2
    cr_pair = (cr[:, 0::2] + cr[:, 1::2]) / 2
    height, width = luma.shape
    packed = np.empty((height, width, 2), np.float64)
    luma_index, chroma_index = (1, 0) if order == "uyvy" else (0, 1)
    packed[..., luma_index] = luma
    packed[:, 0::2, chroma_index] = cb_pair
    packed[:, 1::2, chroma_index] = cr_pair
    return np.clip(packed.round(), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("encoding,order", [("yuv422", "uyvy"), ("yuv422_yuy2", "yuyv"), ("yuyv", "yuyv")])
def test_yuv422_frames_convert_to_the_original_colours(encoding: str, order: str) -> None:
    original = smooth_bgr()
    msg = array_to_image(pack_422(original, order), encoding)
    assert msg.step == 2 * original.shape[1]
    bgr = to_bgr(image_to_array(msg), encoding)
    assert bgr.shape == original.shape and bgr.dtype == np.uint8
    error = np.abs(bgr.astype(int) - original.astype(int))
    assert error.mean() < 2.0 and error.max() <= 6, (encoding, error.mean(), error.max())
    swapped = "yuv422" if encoding != "yuv422" else "yuv422_yuy2"
    assert np.abs(to_bgr(image_to_array(msg), swapped).astype(int) - original.astype(int)).mean() > 10


def test_yuv422_with_row_padding_and_bad_sizes() -> None:
    original = smooth_bgr(8, 10)
    packed = pack_422(original, "uyvy")
    padded = np.zeros((8, 24), np.uint8)
    padded[:, :20] = packed.reshape(8, 20)
    msg = array_to_image(packed, "yuv422")
    msg.step, msg.data = 24, padded.tobytes()
    expected = to_bgr(packed, "yuv422")
    assert np.array_equal(to_bgr(image_to_array(msg), "yuv422"), expected)
    with pytest.raises(ConversionError, match="even width"):
        to_bgr(np.zeros((4, 5, 2), np.uint8), "yuv422")
    with pytest.raises(ConversionError, match="2x2"):
        to_bgr(np.zeros((1, 8), np.uint8), "bayer_rggb8")
    short = array_to_image(packed, "yuv422")
    short.data = short.data[:-3]
    with pytest.raises(ConversionError):
        image_to_array(short)
