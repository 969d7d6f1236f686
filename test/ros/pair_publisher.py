"""Publisher process for the node integration tests: synthetic thermal/RGB pairs at a rate.

Good frame k has stamp (EPOCH_S + k) s, nanosec 0, on both topics, so subscribers recover k from
any output stamp.
With ``--bad``, four bad messages follow the first half of the good pairs: an unsupported
encoding, a thermal/RGB size mismatch, empty data and huge dimensions with short data.

Usage: python pair_publisher.py --count 20 --rate 10 [--bad] [--best-effort]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.ros.conversions import array_to_image

EPOCH_S = 1_000_000
FRAME_ID = "rgb_optical_frame"


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
    wrong_encoding.encoding = "bayer_rggb8"
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--bad", action="store_true")
    parser.add_argument("--best-effort", action="store_true")
    parser.add_argument("--wait", type=float, default=20.0, help="seconds to wait for the node")
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node("pair_publisher")
    reliability = ReliabilityPolicy.BEST_EFFORT if args.best_effort else ReliabilityPolicy.RELIABLE
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=reliability)
    thermal_pub = node.create_publisher(Image, "thermal/image_raw", qos)
    rgb_pub = node.create_publisher(Image, "rgb/image_raw", qos)
    deadline = time.monotonic() + args.wait
    while min(thermal_pub.get_subscription_count(), rgb_pub.get_subscription_count()) == 0:
        if time.monotonic() > deadline:
            print("no subscriber appeared", file=sys.stderr)
            return 1
        time.sleep(0.05)
    time.sleep(0.5)  # let the matched subscriptions settle before the first frame

    schedule: list[tuple[Image, Image]] = []
    for k in range(args.count):
        thermal, visible = frame(k, args.height, args.width)
        schedule.append((array_to_image(thermal, "mono8", header(k, "thermal")),
                         array_to_image(visible, "bgr8", header(k, FRAME_ID))))
    if args.bad:
        half = args.count // 2
        schedule[half:half] = bad_pairs(half - 1, args.height, args.width)
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
