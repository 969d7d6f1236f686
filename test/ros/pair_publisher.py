"""Publisher process for the node integration tests: synthetic thermal/RGB pairs at a rate.

Good frame k has stamp (EPOCH_S + k) s, nanosec 0, on both topics, so subscribers recover k from
any output stamp.
With ``--bad``, four bad messages follow the first half of the good pairs: an unsupported
encoding, a thermal/RGB size mismatch, empty data and huge dimensions with short data.
With ``--compressed thermal|rgb|both``, those streams go out as PNG ``sensor_msgs/CompressedImage``
on ``<topic>/compressed``; ``--corrupt`` then puts one garbage message per compressed stream after
the first half (stamped k + 0.2, k + 0.4 s like ``--bad``). ``--thermal-offset-ms`` shifts the
good thermal stamps (nanosec = offset), so only the RGB stamp is whole seconds.

Usage: python pair_publisher.py --count 20 --rate 10 [--bad] [--best-effort] [--depth 2]
       [--compressed both [--corrupt]] [--thermal-offset-ms 5]
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.ros.conversions import array_to_image

EPOCH_S = 1_000_000
FRAME_ID = "rgb_optical_frame"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Message = Image | CompressedImage


def frame(k: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The (thermal mono8, visible BGR) pair number k."""
    return synthetic_pair(height, width, seed=3, t=0.1 * k)


def header(k: int, frame_id: str, nanosec: int = 0) -> Header:
    result = Header(frame_id=frame_id)
    result.stamp.sec, result.stamp.nanosec = EPOCH_S + k, nanosec
    return result


def bad_pairs(k: int, height: int, width: int) -> list[tuple[Image, Image]]:
    """Four pairs with one bad member each, stamped k + 0.2, k + 0.4, ... s (between good frames)."""
    thermal, visible = frame(0, height, width)
    stamps = [header(k, "thermal", 200_000_000 * (j + 1)) for j in range(4)]
    rgb_stamps = [header(k, FRAME_ID, 200_000_000 * (j + 1)) for j in range(4)]
    wrong_encoding = array_to_image(thermal, "mono8", stamps[0])
    wrong_encoding.encoding = "64FC1"
    narrow = np.ascontiguousarray(visible[: height // 3])
    empty = array_to_image(thermal, "mono8", stamps[2])
    empty.data = b""
    huge = Image(header=stamps[3], height=100_000, width=100_000, encoding="mono8",
                 step=100_000, is_bigendian=0, data=bytes(64))
    return [
        (wrong_encoding, array_to_image(visible, "bgr8", rgb_stamps[0])),
        (array_to_image(thermal, "mono8", stamps[1]), array_to_image(narrow, "bgr8", rgb_stamps[1])),
        (empty, array_to_image(visible, "bgr8", rgb_stamps[2])),
        (huge, array_to_image(visible, "bgr8", rgb_stamps[3])),
    ]


def png_message(array: np.ndarray, encoding: str, stamp: Header) -> CompressedImage:
    """A lossless PNG CompressedImage, format string as compressed_image_transport writes it."""
    ok, buffer = cv2.imencode(".png", array)
    assert ok, "PNG encoding failed"
    return CompressedImage(header=stamp, format=f"{encoding}; png compressed {encoding}", data=buffer.tobytes())


def message(array: np.ndarray, encoding: str, stamp: Header, compressed: bool) -> Message:
    """The array as a raw Image or, when `compressed`, as a PNG CompressedImage."""
    return png_message(array, encoding, stamp) if compressed else array_to_image(array, encoding, stamp)


def corrupt_pairs(k: int, height: int, width: int, compressed: tuple[bool, bool]) -> list[tuple[Message, Message]]:
    """One pair per compressed stream whose member on that stream is garbage, stamped k + 0.2, k + 0.4 s.

    Thermal gets random bytes, RGB a PNG signature followed by random bytes (a broken PNG).
    """
    thermal, visible = frame(0, height, width)
    rng = np.random.default_rng(k)
    pairs: list[tuple[Message, Message]] = []
    for stream, is_compressed in enumerate(compressed):
        if not is_compressed:
            continue
        nanosec = 200_000_000 * (len(pairs) + 1)
        thermal_msg = message(thermal, "mono8", header(k, "thermal", nanosec), compressed[0])
        rgb_msg = message(visible, "bgr8", header(k, FRAME_ID, nanosec), compressed[1])
        garbage = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        if stream == 0:
            thermal_msg = CompressedImage(header=thermal_msg.header, format="png", data=garbage)
        else:
            rgb_msg = CompressedImage(header=rgb_msg.header, format="png", data=PNG_SIGNATURE + garbage)
        pairs.append((thermal_msg, rgb_msg))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--bad", action="store_true")
    parser.add_argument("--best-effort", action="store_true")
    parser.add_argument("--depth", type=int, default=10, help="keep-last depth of the publishers")
    parser.add_argument("--compressed", choices=("thermal", "rgb", "both"), default=None,
                        help="publish these streams as PNG CompressedImage on <topic>/compressed")
    parser.add_argument("--corrupt", action="store_true", help="garbage on each compressed stream after half")
    parser.add_argument("--thermal-offset-ms", type=float, default=0.0, help="thermal stamp offset, 0 <= ms < 200")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds to wait for the node")
    args = parser.parse_args()
    compressed = (args.compressed in ("thermal", "both"), args.compressed in ("rgb", "both"))
    if args.corrupt and not any(compressed):
        parser.error("--corrupt needs --compressed")
    if args.bad and any(compressed):
        parser.error("--bad sends raw Image messages; it cannot be combined with --compressed")
    thermal_nanosec = int(round(args.thermal_offset_ms * 1e6))
    if not 0 <= thermal_nanosec < 200_000_000:
        parser.error("--thermal-offset-ms must be in [0, 200)")

    rclpy.init()
    node = rclpy.create_node("pair_publisher")
    reliability = ReliabilityPolicy.BEST_EFFORT if args.best_effort else ReliabilityPolicy.RELIABLE
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=args.depth, reliability=reliability)
    thermal_pub, rgb_pub = (
        node.create_publisher(CompressedImage, f"{name}/image_raw/compressed", qos) if is_compressed
        else node.create_publisher(Image, f"{name}/image_raw", qos)
        for name, is_compressed in zip(("thermal", "rgb"), compressed, strict=True)
    )
    deadline = time.monotonic() + args.wait
    while min(thermal_pub.get_subscription_count(), rgb_pub.get_subscription_count()) == 0:
        if time.monotonic() > deadline:
            print("no subscriber appeared", file=sys.stderr)
            return 1
        time.sleep(0.05)
    time.sleep(0.5)  # let the matched subscriptions settle before the first frame

    schedule: list[tuple[Message, Message]] = []
    for k in range(args.count):
        thermal, visible = frame(k, args.height, args.width)
        schedule.append((message(thermal, "mono8", header(k, "thermal", thermal_nanosec), compressed[0]),
                         message(visible, "bgr8", header(k, FRAME_ID), compressed[1])))
    half = args.count // 2
    if args.bad:
        schedule[half:half] = bad_pairs(half - 1, args.height, args.width)
    if args.corrupt:
        schedule[half:half] = corrupt_pairs(half - 1, args.height, args.width, compressed)
    period = 1.0 / args.rate
    next_time = time.monotonic()
    for thermal_msg, rgb_msg in schedule:
        thermal_pub.publish(thermal_msg)
        rgb_pub.publish(rgb_msg)
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    time.sleep(1.0)  # reliable delivery of the last frames
    print(f"published {len(schedule)} pairs", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
