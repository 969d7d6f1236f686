"""Conversions between ``sensor_msgs/Image`` (or ``CompressedImage``) and numpy arrays.

No cv_bridge: the functions are duck-typed over the message fields (``height``, ``width``,
``encoding``, ``step``, ``is_bigendian``, ``data``) so they work for rclpy messages (``data`` is an
``array.array`` or ``bytes``) and for rosbags typestore messages (``data`` is a numpy uint8 array).

Reads are zero-copy (a strided view on the message buffer that honours ``step`` padding) except
where the bytes must change: big-endian multi-byte data is byte-swapped into a native copy.
Writes produce ``bytes``, which rclpy assigns quickly.
"""
from __future__ import annotations

import sys
from dataclasses import is_dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np

__all__ = [
    "ConversionError",
    "SUPPORTED_ENCODINGS",
    "image_to_array",
    "array_to_image",
    "to_bgr",
    "compressed_to_array",
]

# Bytes of data beyond this are refused before any buffer is touched (a 16k x 16k RGBA frame).
_MAX_FRAME_BYTES = 1 << 30


class ConversionError(ValueError):
    """A message or array cannot be converted; the message names the bad value.

    Attributes:
        kind: ``"encoding"`` for an unsupported encoding, ``"data"`` for anything else.
    """

    def __init__(self, message: str, kind: str = "data") -> None:
        super().__init__(message)
        self.kind = kind


class _Layout(NamedTuple):
    dtype: np.dtype
    channels: int


_LAYOUTS: dict[str, _Layout] = {
    "mono8": _Layout(np.dtype(np.uint8), 1),
    "8UC1": _Layout(np.dtype(np.uint8), 1),
    "mono16": _Layout(np.dtype(np.uint16), 1),
    "16UC1": _Layout(np.dtype(np.uint16), 1),
    "32FC1": _Layout(np.dtype(np.float32), 1),
    "rgb8": _Layout(np.dtype(np.uint8), 3),
    "bgr8": _Layout(np.dtype(np.uint8), 3),
    "rgba8": _Layout(np.dtype(np.uint8), 4),
    "bgra8": _Layout(np.dtype(np.uint8), 4),
    # Raw camera encodings: one Bayer sample per pixel, or 4:2:2 YUV with 2 bytes per pixel.
    "bayer_rggb8": _Layout(np.dtype(np.uint8), 1),
    "bayer_bggr8": _Layout(np.dtype(np.uint8), 1),
    "bayer_gbrg8": _Layout(np.dtype(np.uint8), 1),
    "bayer_grbg8": _Layout(np.dtype(np.uint8), 1),
    "yuv422": _Layout(np.dtype(np.uint8), 2),
    "yuv422_yuy2": _Layout(np.dtype(np.uint8), 2),
    "yuyv": _Layout(np.dtype(np.uint8), 2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)

# cv2 conversion codes from each colour encoding to BGR; absent = already BGR or gray.
_TO_BGR_CODES: dict[str, int] = {
    "rgb8": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGBA2BGR,
    "bgra8": cv2.COLOR_BGRA2BGR,
    # OpenCV names a Bayer pattern by the second row's first two pixels: ROS rggb = OpenCV BG.
    "bayer_rggb8": cv2.COLOR_BayerBG2BGR,
    "bayer_bggr8": cv2.COLOR_BayerRG2BGR,
    "bayer_gbrg8": cv2.COLOR_BayerGR2BGR,
    "bayer_grbg8": cv2.COLOR_BayerGB2BGR,
    # yuv422 is UYVY byte order (sensor_msgs/image_encodings), yuv422_yuy2/yuyv is YUYV; BT.601.
    "yuv422": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUY2,
    "yuyv": cv2.COLOR_YUV2BGR_YUY2,
}
# Encodings whose frames must have an even width (a 4:2:2 macro-pixel spans two pixels) or, for
# Bayer mosaics, at least 2x2 pixels for demosaicing.
_EVEN_WIDTH = ("yuv422", "yuv422_yuy2", "yuyv")
_BAYER = ("bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8")


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except (KeyError, TypeError):
        raise ConversionError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}",
            kind="encoding",
        ) from None


def _as_byte_buffer(data: Any) -> np.ndarray:
    """View message data (bytes, array.array, memoryview or numpy array) as flat uint8."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ConversionError(f"data must hold uint8, got numpy dtype {data.dtype}")
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"data of type {type(data).__name__} is not a byte buffer") from exc


def image_to_array(msg: Any) -> np.ndarray:
    """Convert a ``sensor_msgs/Image``-like message to a numpy array.

    Args:
        msg: any object with ``height``, ``width``, ``encoding``, ``step``, ``is_bigendian`` and
            ``data`` (rclpy ``sensor_msgs.msg.Image``, a rosbags Image, ...).

    Returns:
        A view on ``msg.data`` when the byte order is native (may be read-only, keep ``msg``
        alive or copy), else a native-order copy. Shape ``(height, width)`` for mono encodings,
        ``(height, width, 3|4)`` for colour ones in the encoding's channel order. dtype uint8,
        uint16 (mono16, 16UC1) or float32 (32FC1).

    Raises:
        ConversionError: unsupported encoding, zero or negative dimensions, ``step`` smaller
            than a row, or ``data`` whose length does not match ``step * height``.
    """
    encoding = msg.encoding
    dtype, channels = _layout(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ConversionError(f"image {encoding} has zero or negative size {width}x{height}")
    pixel_bytes = dtype.itemsize * channels
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ConversionError(
            f"step {step} is smaller than width {width} x {pixel_bytes} bytes/pixel = {row_bytes}"
        )
    expected = step * height
    if expected > _MAX_FRAME_BYTES:
        raise ConversionError(f"image {width}x{height} step {step} claims {expected} bytes, over the limit")
    buffer = _as_byte_buffer(msg.data)
    # Accept a last row without its padding (some drivers send step*(height-1)+row_bytes).
    if buffer.size not in (expected, expected - step + row_bytes):
        raise ConversionError(
            f"data has {buffer.size} bytes but step {step} x height {height} = {expected}"
        )
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    shape: tuple[int, ...] = (height, width) if channels == 1 else (height, width, channels)
    strides: tuple[int, ...] = (step, pixel_bytes) if channels == 1 else (step, pixel_bytes, dtype.itemsize)
    array = np.ndarray(shape, dtype=dtype, buffer=buffer, strides=strides)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


def _default_header(msg_cls: Any) -> Any:
    """An empty header of the message family of ``msg_cls`` (rclpy or a rosbags typestore)."""
    module = sys.modules.get(msg_cls.__module__)
    header_cls = getattr(module, "std_msgs__msg__Header", None)
    time_cls = getattr(module, "builtin_interfaces__msg__Time", None)
    if header_cls is None or time_cls is None:
        raise ConversionError(f"pass a header: no default header known for {msg_cls.__name__}")
    return header_cls(stamp=time_cls(sec=0, nanosec=0), frame_id="")


def array_to_image(
    array: np.ndarray,
    encoding: str,
    header: Any = None,
    msg_cls: Any = None,
) -> Any:
    """Build an Image message from an array.

    Args:
        array: ``(H, W)`` for mono encodings or ``(H, W, C)`` for colour ones, with the dtype of
            the encoding (uint8, uint16 for mono16/16UC1, float32 for 32FC1). Any byte order and
            memory layout; the message gets native-order contiguous rows.
        encoding: one of ``SUPPORTED_ENCODINGS``; the channel order of ``array`` must match it.
        header: header to carry over (stamp and frame_id); an empty one when None.
        msg_cls: message class; rclpy ``sensor_msgs.msg.Image`` when None. Dataclass messages
            (rosbags) get ``data`` as a uint8 numpy array, others ``bytes``.

    Returns:
        The message with ``step = width * bytes per pixel`` and no padding.

    Raises:
        ConversionError: unsupported encoding or an array whose shape/dtype does not fit it.
    """
    dtype, channels = _layout(encoding)
    array = np.asarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        wanted = "(H, W)" if channels == 1 else f"(H, W, {channels})"
        raise ConversionError(f"encoding {encoding} needs an array of shape {wanted}, got {array.shape}")
    if array.dtype.newbyteorder("=") != dtype:
        raise ConversionError(f"encoding {encoding} needs dtype {dtype}, got {array.dtype}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ConversionError(f"array has zero size {array.shape}")
    data = np.ascontiguousarray(array, dtype=dtype.newbyteorder("=")).tobytes()
    if msg_cls is None:
        from sensor_msgs.msg import Image

        msg_cls = Image
    if header is None:
        if msg_cls.__module__.startswith("sensor_msgs.msg"):
            from std_msgs.msg import Header

            header = Header()
        else:
            header = _default_header(msg_cls)
    fields = {
        "header": header,
        "height": height,
        "width": width,
        "encoding": encoding,
        "is_bigendian": int(sys.byteorder == "big" and dtype.itemsize > 1),
        "step": width * channels * dtype.itemsize,
        "data": np.frombuffer(data, dtype=np.uint8) if is_dataclass(msg_cls) else data,
    }
    return msg_cls(**fields)


def to_bgr(array: np.ndarray, encoding: str) -> np.ndarray:
    """Bring an array decoded from ``encoding`` into the core's convention.

    Args:
        array: output of :func:`image_to_array` for a message in ``encoding``.
        encoding: the message encoding.

    Returns:
        BGR uint8 ``(H, W, 3)`` for colour encodings (alpha dropped, RGB reordered, Bayer
        demosaiced, 4:2:2 YUV converted); mono arrays unchanged (2-D uint8, uint16 or float32).

    Raises:
        ConversionError: unsupported encoding, or a YUV frame of odd width / a Bayer frame
            smaller than 2x2.
    """
    _layout(encoding)
    code = _TO_BGR_CODES.get(encoding)
    if code is None:
        return array
    if encoding in _EVEN_WIDTH and array.shape[1] % 2:
        raise ConversionError(f"{encoding} needs an even width (4:2:2 pairs), got {array.shape[1]}")
    if encoding in _BAYER and min(array.shape[:2]) < 2:
        raise ConversionError(f"{encoding} needs at least 2x2 pixels, got {array.shape[1]}x{array.shape[0]}")
    return cv2.cvtColor(array, code)


def compressed_to_array(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg/png, incl. ``compressedDepth``).

    Args:
        msg: object with ``format`` and ``data`` (rclpy or rosbags CompressedImage).

    Returns:
        BGR uint8 ``(H, W, 3)`` for colour images (alpha dropped; 16-bit colour scaled to 8 bits),
        2-D uint8/uint16 for gray.

    Raises:
        ConversionError: empty data or bytes that OpenCV cannot decode.
    """
    buffer = _as_byte_buffer(msg.data)
    if "compresseddepth" in str(msg.format).lower():
        buffer = buffer[12:]  # compressed_depth_image_transport prepends a 12-byte config header
    if buffer.size == 0:
        raise ConversionError(f"compressed image ({msg.format!r}) has no data")
    array = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ConversionError(f"cannot decode {buffer.size} bytes of compressed image format {msg.format!r}")
    if array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if array.ndim == 3 and array.dtype == np.uint16:
        array = (array.astype(np.float32) * np.float32(1.0 / 257.0) + np.float32(0.5)).astype(np.uint8)
    return array
