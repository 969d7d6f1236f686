"""``ivif-demo``: the node's main job end to end over real DDS.

Starts ``fusion_node`` as a separate process, replays a pair sequence into it (LLVIP 010001–010030
when the data is present, else the SYNTHETIC generator), writes the fused frames and coloured
weight maps it publishes to a folder, and prints the output rate, latency and drops.

    ivif-demo                               # data from --data, $IVIF_DATA or ../shared/data
    ivif-demo --rate 30 --loops 3 --out /tmp/demo
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ivif_ros.cli.dependencies import ROS_MODULES, require

__all__ = ["main", "demo", "find_sequence"]

LLVIP_STEMS = [f"{n:06d}" for n in range(10001, 10031)]
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def find_sequence(root: Path | None) -> list[tuple[str, Path, Path]]:
    """LLVIP pairs 010001–010030 under ``root`` or ``root/llvip`` (any layout of ``ivif_ros.data``).

    Returns:
        (stem, infrared path, visible path) for each stem found; empty when the data is absent.
    """
    from ivif_ros.core.errors import FusionInputError
    from ivif_ros.data import find_pairs

    if root is None:
        return []
    try:
        pairs, _ = find_pairs(root / "llvip" if (root / "llvip").is_dir() else root)
    except FusionInputError:
        return []
    found = {Path(pair.name).name: pair for pair in pairs}
    return [(stem, found[stem].ir, found[stem].vis) for stem in LLVIP_STEMS if stem in found]


def _config_file() -> Path:
    """config/fusion.yaml of the source tree, else of the installed share directory."""
    candidates = [
        SOURCE_ROOT / "config" / "fusion.yaml",
        Path(sys.prefix) / "share" / "ivif_ros" / "config" / "fusion.yaml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"fusion.yaml not found in {[str(c) for c in candidates]}")


def _load_frames(args: argparse.Namespace) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """(source label, [(name, thermal, visible BGR)])."""
    from ivif_ros.data import data_root, read_image

    root = data_root(args.data) if args.data or not args.synthetic else None
    sequence = [] if args.synthetic else find_sequence(root)
    if sequence:
        frames = [(stem, read_image(ir, role="ir"), read_image(vis, role="vis")) for stem, ir, vis in sequence]
        return f"LLVIP {sequence[0][0]}-{sequence[-1][0]} ({len(frames)} pairs)", frames
    from ivif_ros.core.synthetic import SYNTHETIC_LABEL, synthetic_pair

    frames = [(f"synthetic_{k:03d}", *synthetic_pair(args.height, args.width, seed=1, t=k / args.rate))
              for k in range(args.count)]
    reason = "--synthetic" if args.synthetic else "LLVIP 010001-010030 not found"
    return f"*** {SYNTHETIC_LABEL} *** ({len(frames)} pairs, {reason})", frames


def demo(args: argparse.Namespace) -> int:
    """Run the demo; see the module docstring. Returns the exit status."""
    import cv2
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from ivif_ros import topics
    from ivif_ros.ros.conversions import array_to_image, image_to_array
    from ivif_ros.ros.diagnostics import drops_by_reason

    source, frames = _load_frames(args)
    print(f"source: {source}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    domain_id = args.domain_id or random.randint(1, 101)
    config = Path(args.config) if args.config else _config_file()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    profile = config.with_name("fastdds_large_images.xml")
    if profile.is_file():
        env.update(FASTRTPS_DEFAULT_PROFILES_FILE=str(profile), FASTDDS_DEFAULT_PROFILES_FILE=str(profile))
        os.environ.update(FASTRTPS_DEFAULT_PROFILES_FILE=str(profile), FASTDDS_DEFAULT_PROFILES_FILE=str(profile))
    log_path = out / "fusion_node.log"
    height, width = frames[0][2].shape[:2]
    command = [sys.executable, "-m", "ivif_ros.ros.fusion_node", "--ros-args", "--params-file", str(config),
               "-p", f"queue_size:={max(2, args.queue)}", "-p", f"warmup_size:=[{float(width)}, {float(height)}]",
               # A replay wants every pair: the node may fall the whole queue behind and catch up in
               # order (a live robot keeps the default max_backlog, which bounds latency instead).
               "-p", f"max_backlog:={max(2, args.queue)}"]
    with open(log_path, "w") as log:
        node_process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(
        f"fusion_node started (pid {node_process.pid}, domain {domain_id}, params {config}, log {log_path})",
        flush=True,
    )

    context = Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("ivif_demo", context=context)
    lock = threading.Lock()
    sent_at: dict[int, tuple[str, float]] = {}
    received: dict[str, list] = {"fused": [], "colored": []}
    ready = threading.Event()
    node_status: dict[str, str] = {}  # the node's latest /diagnostics key/values

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if not status.name.endswith(": fusion"):
                continue
            values = {kv.key: kv.value for kv in status.values}
            with lock:
                node_status.clear()
                node_status.update(values)
            if values.get("ready") == "true" and values.get("fused_subscribers", "0") != "0":
                ready.set()

    def on_output(kind: str, msg: Image) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with lock:
            if stamp in sent_at:
                name, sent = sent_at[stamp]
                received[kind].append((name, time.monotonic() - sent, np.array(image_to_array(msg))))

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
    thermal_pub = node.create_publisher(Image, topics.THERMAL_TOPIC, qos)
    rgb_pub = node.create_publisher(Image, topics.RGB_TOPIC, qos)
    node.create_subscription(Image, topics.FUSED_TOPIC, lambda m: on_output("fused", m), qos)
    node.create_subscription(Image, topics.COLORED_TOPIC, lambda m: on_output("colored", m), qos)
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS_TOPIC, on_diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + args.timeout
        # Ready = warmed at the frame size, both inputs subscribed and the node's fused publisher matched
        # to this demo's subscription (both seen from the node's side, on /diagnostics).
        while not ready.is_set() or min(thermal_pub.get_subscription_count(), rgb_pub.get_subscription_count()) == 0:
            if node_process.poll() is not None or time.monotonic() > deadline:
                print(f"error: fusion_node did not come up; see {log_path}", file=sys.stderr)
                return 1
            time.sleep(0.1)
        time.sleep(0.5)
        messages = [(name, array_to_image(ir, "mono16" if ir.dtype == np.uint16 else "mono8"),
                     array_to_image(vis, "bgr8" if vis.ndim == 3 else "mono8")) for name, ir, vis in frames]
        period, total = 1.0 / args.rate, len(messages) * args.loops
        print(f"publishing {total} pairs at {args.rate:g} Hz", flush=True)
        next_time = time.monotonic()
        for k in range(total):
            name, thermal_msg, rgb_msg = messages[k % len(messages)]
            stamp = node.get_clock().now().to_msg()
            for msg, frame_id in ((thermal_msg, "thermal_optical_frame"), (rgb_msg, "rgb_optical_frame")):
                msg.header.stamp, msg.header.frame_id = stamp, frame_id
            with lock:
                sent_at[stamp.sec * 1_000_000_000 + stamp.nanosec] = (f"{k:04d}_{name}", time.monotonic())
            thermal_pub.publish(thermal_msg)
            rgb_pub.publish(rgb_msg)
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
        time.sleep(2.0)  # let the last pairs come back
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        if node_process.poll() is None:
            node_process.send_signal(signal.SIGINT)
            try:
                node_process.wait(15)
            except subprocess.TimeoutExpired:
                node_process.kill()

    with lock:
        fused, colored = list(received["fused"]), list(received["colored"])
        status = dict(node_status)
    for prefix, items in (("fused", fused), ("weights", colored)):
        for name, _, image in items:
            cv2.imwrite(str(out / f"{prefix}_{name}.png"), image)
    print(f"source: {source}")
    print(f"sent {total} pairs, received {len(fused)} fused frames ({total - len(fused)} dropped or lost), "
          f"written to {out}/")
    drops = {reason: count for reason, count in drops_by_reason(status).items() if count}
    print("node drops: " + (", ".join(f"{reason} {count}" for reason, count in sorted(drops.items())) or "none")
          + (f"; processing p50 {status['processing_ms_p50']} ms" if "processing_ms_p50" in status else ""))
    if not fused:
        print(f"error: no fused frame arrived; see {log_path}", file=sys.stderr)
        return 1
    latencies = np.array([latency for _, latency, _ in fused]) * 1e3
    span = max(total - 1, 1) * period
    print(f"output rate {len(fused) / span:.1f} Hz (input {args.rate:g} Hz), "
          f"latency p50 {np.percentile(latencies, 50):.1f} ms, p99 {np.percentile(latencies, 99):.1f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console script ``ivif-demo``."""
    parser = argparse.ArgumentParser(prog="ivif-demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="data root holding llvip/ (default: $IVIF_DATA, ../shared/data)")
    parser.add_argument("--out", default="demo_out", help="folder for the received frames (default ./demo_out)")
    parser.add_argument("--rate", type=float, default=10.0, help="pairs per second (default 10)")
    parser.add_argument("--loops", type=int, default=1, help="times the sequence is replayed (default 1)")
    parser.add_argument("--config", help="parameter file (default config/fusion.yaml)")
    parser.add_argument("--synthetic", action="store_true", help="use the synthetic generator even if LLVIP is present")
    parser.add_argument("--count", type=int, default=30, help="synthetic pairs when LLVIP is absent")
    parser.add_argument("--height", type=int, default=512, help="synthetic frame height")
    parser.add_argument("--width", type=int, default=640, help="synthetic frame width")
    parser.add_argument("--queue", type=int, default=10,
                        help="synchroniser queue length of the node, also its max_backlog (default 10)")
    parser.add_argument("--domain-id", type=int, default=0, help="ROS domain (default: random 1..101)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the node to start")
    args = parser.parse_args(argv)
    require("ivif-demo", "the node and the DDS replay", ROS_MODULES)
    if args.rate <= 0 or args.loops < 1 or args.count < 1:
        print("error: --rate must be > 0, --loops and --count >= 1", file=sys.stderr)
        return 2
    try:
        return demo(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line instead of a traceback
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
