"""Image dimensions read from PNG and JPEG headers, without decoding any pixel.

A compressed image of a few hundred bytes can claim 40000×40000 pixels; decoding it first and
checking its size afterwards allocates gigabytes. ``image_dimensions`` parses only the header
(PNG ``IHDR``, JPEG start-of-frame marker) so callers can refuse an image before decoding it.
"""
from __future__ import annotations

import struct

__all__ = ["HeaderError", "image_dimensions", "check_dimensions"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
# Start-of-frame markers (baseline, extended, progressive, lossless, arithmetic); not C4/C8/CC.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers without a length field: TEM, RST0..7, SOI, EOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})


class HeaderError(ValueError):
    """The bytes are not a PNG or JPEG whose dimensions can be read, or the dimensions are refused."""


def _png_dimensions(data: bytes | memoryview) -> tuple[int, int]:
    if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
        raise HeaderError("PNG without an IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _jpeg_dimensions(data: bytes | memoryview) -> tuple[int, int]:
    position, size = 2, len(data)
    while position + 4 <= size:
        if data[position] != 0xFF:
            raise HeaderError(f"JPEG marker expected at byte {position}")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if length < 2:
            raise HeaderError(f"JPEG segment with length {length} at byte {position}")
        if marker in _JPEG_SOF:
            if position + 9 > size:
                break
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            raise HeaderError("JPEG scan data before a start-of-frame marker")
        position += 2 + length
    raise HeaderError("JPEG without a start-of-frame marker")


def image_dimensions(data: bytes | memoryview) -> tuple[int, int]:
    """(width, height) claimed by a PNG or JPEG header.

    Args:
        data: the encoded image (at least its header).

    Returns:
        (width, height) as written in the header (not verified against the pixel data).

    Raises:
        HeaderError: neither PNG nor JPEG, or a header that is truncated or malformed.
    """
    data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if bytes(data[:8]) == PNG_SIGNATURE:
        return _png_dimensions(data)
    if bytes(data[:2]) == _JPEG_SOI:
        return _jpeg_dimensions(data)
    raise HeaderError("not a PNG or JPEG image (unknown signature)")


def check_dimensions(data: bytes | memoryview, max_pixels: int) -> tuple[int, int]:
    """``image_dimensions``, refused when empty or larger than ``max_pixels``.

    Raises:
        HeaderError: unreadable header, a zero side, or width × height > max_pixels.
    """
    width, height = image_dimensions(data)
    if width == 0 or height == 0:
        raise HeaderError(f"image header claims an empty {width}x{height} image")
    if width * height > max_pixels:
        raise HeaderError(f"image header claims {width}x{height} pixels, over max_pixels={max_pixels}")
    return width, height
