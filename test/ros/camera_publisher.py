"""Publisher process for the robot-integration tests: camera-like thermal/RGB streams with camera_info.

Good frame k has stamp (EPOCH_S + k) s, nanosec 0, on every topic (as pair_publisher.py).
The thermal stream goes out raw (mono8/mono16 Image), as a PNG ``CompressedImage``
(``--thermal-format png``) or as a 16-bit ``compressedDepth`` PNG (``--thermal-format depth16``)
on ``<thermal base>/compressed`` or ``<thermal base>/compressedDepth``; the RGB stream is raw in any
encoding the tests name (``bgr8``, ``bayer_rggb8``, ``yuv422``, ``yuv422_yuy2``, ...), converted
from the BGR frame by an independent reference encoder. ``--camera-info`` adds
``<base parent>/camera_info`` for both cameras with the K matrices of ``camera_matrices()``.

Usage: python camera_publisher.py --thermal-base /boson/image_raw --thermal-format png
       --rgb-encoding bayer_rggb8 --camera-info --count 8 [--best-effort]
"""
from __future__ import annotations

import argparse
import struct
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ivif_ros.ros.conversions import array_to_image
from ivif_ros.ros.transport_topics import camera_info_topic, transport_topic

from pair_publisher import FRAME_ID, frame, header

# Colour of each mosaic position (row parity, column parity) per ROS Bayer encoding.
BAYER_PATTERNS = {
    "bayer_rggb8": (("r", "g"), ("g", "b")),
    "bayer_bggr8": (("b", "g"), ("g", "r")),
    "bayer_gbrg8": (("g", "b"), ("r", "g")),
    "bayer_grbg8": (("g", "r"), ("b", "g")),
}
CHANNEL = {"b": 0, "g": 1, "r": 2}


def camera_matrices(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(K_thermal, K_rgb) of the test cameras: different focal lengths and centres."""
    k_thermal = np.array([[0.9 * width, 0.0, width / 2 + 3.0], [0.0, 0.9 * width, height / 2 - 2.0], [0.0, 0.0, 1.0]])
    k_rgb = np.array([[1.0 * width, 0.0, width / 2 - 1.5], [0.0, 1.0 * width, height / 2 + 1.0], [0.0, 0.0, 1.0]])
    return k_thermal, k_rgb


def thermal16(thermal8: np.ndarray) -> np.ndarray:
    """A 16-bit radiometric-looking frame from the 8-bit synthetic one."""
    return (thermal8.astype(np.uint16) * 40 + 7000).astype(np.uint16)


def rgb_raw(visible: np.ndarray, encoding: str) -> np.ndarray:
    """The BGR frame as a camera would send it in `encoding` (Bayer mosaic or BT.601 4:2:2)."""
    if encoding == "bgr8":
        return visible
    if encoding in BAYER_PATTERNS:
        pattern, result = BAYER_PATTERNS[encoding], np.empty(visible.shape[:2], np.uint8)
        for row in range(2):
            for column in range(2):
                result[row::2, column::2] = visible[row::2, column::2, CHANNEL[pattern[row][column]]]
        return result
    b, g, r = (visible[..., i].astype(np.float64) for i in range(3))
    luma = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    packed = np.empty(visible.shape[:2] + (2,), np.float64)
    luma_index, chroma_index = (1, 0) if encoding == "yuv422" else (0, 1)
    packed[..., luma_index] = luma
    packed[:, 0::2, chroma_index] = (cb[:, 0::2] + cb[:, 1::2]) / 2
    packed[:, 1::2, chroma_index] = (cr[:, 0::2] + cr[:, 1::2]) / 2
    return np.clip(packed.round(), 0, 255).astype(np.uint8)


def thermal_message(thermal8: np.ndarray, fmt: str, stamp) -> Image | CompressedImage:
    if fmt == "raw":
        return array_to_image(thermal8, "mono8", stamp)
    if fmt == "png":
        ok, buffer = cv2.imencode(".png", thermal8)
        assert ok
        return CompressedImage(header=stamp, format="mono8; png compressed mono8", data=buffer.tobytes())
    ok, buffer = cv2.imencode(".png", thermal16(thermal8))  # compressed_depth_image_transport layout
    assert ok
    config_header = struct.pack("<iff", 0, 0.0, 0.0)
    return CompressedImage(header=stamp, format="16UC1; compressedDepth png", data=config_header + buffer.tobytes())


def camera_info(k: np.ndarray, height: int, width: int, stamp) -> CameraInfo:
    projection = np.hstack([k, np.zeros((3, 1))])
    return CameraInfo(header=stamp, height=height, width=width, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=k.reshape(-1).tolist(), r=np.eye(3).reshape(-1).tolist(), p=projection.reshape(-1).tolist())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--thermal-base", default="/thermal/image_raw")
    parser.add_argument("--rgb-base", default="/rgb/image_raw")
    parser.add_argument("--thermal-format", choices=("raw", "png", "depth16"), default="raw")
    parser.add_argument("--rgb-encoding", default="bgr8")
    parser.add_argument("--camera-info", action="store_true")
    parser.add_argument("--best-effort", action="store_true")
    parser.add_argument("--thermal-half", action="store_true", help="thermal frames at half the RGB size")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the node")
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node("camera_publisher")
    reliability = ReliabilityPolicy.BEST_EFFORT if args.best_effort else ReliabilityPolicy.RELIABLE
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=reliability)
    transport = {"raw": "raw", "png": "compressed", "depth16": "compressedDepth"}[args.thermal_format]
    thermal_pub = node.create_publisher(Image if transport == "raw" else CompressedImage,
                                        transport_topic(args.thermal_base, transport), qos)
    rgb_pub = node.create_publisher(Image, args.rgb_base, qos)
    info_pubs = [node.create_publisher(CameraInfo, camera_info_topic(base), qos)
                 for base in (args.thermal_base, args.rgb_base)] if args.camera_info else []
    deadline = time.monotonic() + args.wait
    while min(thermal_pub.get_subscription_count(), rgb_pub.get_subscription_count(),
              *(p.get_subscription_count() for p in info_pubs)) == 0:
        if time.monotonic() > deadline:
            print("no subscriber appeared", file=sys.stderr)
            return 1
        time.sleep(0.05)
    time.sleep(1.5)  # let the node follow best-effort publishers and the subscriptions settle

    k_thermal, k_rgb = camera_matrices(args.height, args.width)
    period, next_time = 1.0 / args.rate, time.monotonic()
    for k in range(args.count):
        thermal8, visible = frame(k, args.height, args.width)
        if args.thermal_half:
            thermal8 = cv2.resize(thermal8, (args.width // 2, args.height // 2), interpolation=cv2.INTER_AREA)
        if info_pubs:
            info_pubs[0].publish(camera_info(k_thermal, args.height, args.width, header(k, "thermal")))
            info_pubs[1].publish(camera_info(k_rgb, args.height, args.width, header(k, FRAME_ID)))
        thermal_pub.publish(thermal_message(thermal8, args.thermal_format, header(k, "thermal")))
        rgb_pub.publish(array_to_image(rgb_raw(visible, args.rgb_encoding), args.rgb_encoding, header(k, FRAME_ID)))
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    time.sleep(1.0)
    print(f"published {args.count} frames", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
