"""``ivif-soak``: the fusion node under a long stream with faults, over real DDS.

Starts ``fusion_node`` as its own process, publishes N synthetic pairs (default 10,000 at 640×512
and 30 Hz) from this process and injects a fault every K pairs (the fault catalogue of
``ivif_ros.ros.faults``, in turn). Prints and writes ``soak.json`` and ``soak.md``: good pairs
sent and fused, drops by reason (from the node's ``/diagnostics``), node RSS after warm-up and at
the end, worker restarts, p50/p99 latency (publish → fused frame received here) and the DDS
profile used (the Fast DDS large-image profile for both processes unless ``--no-profile``).

    ivif-soak                                     # 10,000 pairs, ~6 min
    ivif-soak --pairs 1000 --out soak_out
    ivif-soak --pairs 2000 --no-profile           # Fast DDS defaults: losses show as transport_lost
    ivif-soak --pairs 3000 -p max_backlog:=0      # node parameters as ros2 run's -p (or --params-file)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "soak"]

SOURCE_ROOT = Path(__file__).resolve().parents[2]
WARM_UP_PAIRS = 150  # RSS "after warm-up" is read once this many pairs were sent


def _profile_path() -> Path | None:
    candidates = [SOURCE_ROOT / "config" / "fastdds_large_images.xml",
                  Path(sys.prefix) / "share" / "ivif_ros" / "config" / "fastdds_large_images.xml"]
    return next((c for c in candidates if c.is_file()), None)


def _rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc), NaN when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _describe_loss(index: int, fault_positions: list[tuple[int, str]]) -> str:
    """``"good pair 1234, 3 after camera_silent"`` (or ``"before any fault"``)."""
    before = [(position, name) for position, name in fault_positions if position <= index]
    if not before:
        return f"good pair {index}, before any fault"
    position, name = before[-1]
    return f"good pair {index}, {index - position} after {name}"


def _markdown(report: dict[str, Any]) -> str:
    drops = ", ".join(f"{reason} {count}" for reason, count in sorted(report["drops"].items())) or "none"
    rows = [
        ("pairs (good + faults)", f"{report['pairs']} at {report['width']}×{report['height']}, "
                                  f"{report['rate_hz']:g} Hz, a fault every {report['fault_every']}"),
        ("faults injected", f"{report['faults_injected']} ({', '.join(report['fault_kinds'])})"),
        ("good pairs sent / fused", f"{report['good_sent']} / {report['good_fused']} "
                                    f"({report['good_not_fused']} not fused)"),
        ("good pairs not fused", "; ".join(report["good_lost"][:20]) or "none"),
        ("drops by reason (node)", drops),
        ("node RSS after warm-up → end", f"{report['rss_after_warmup_mb']:.0f} → {report['rss_end_mb']:.0f} MiB "
                                         f"(growth {report['rss_growth_mb']:+.0f} MiB, "
                                         f"max {report['rss_max_mb']:.0f})"),
        ("worker restarts", str(report["worker_restarts"])),
        ("latency p50 / p99 (publish → fused received)",
         f"{report['latency_ms_p50']:.1f} / {report['latency_ms_p99']:.1f} ms"),
        ("node processing p50 / p99 (recent pairs)",
         f"{report['node_processing_ms_p50']:.1f} / {report['node_processing_ms_p99']:.1f} ms"),
        ("node alive at the end", str(report["node_alive"])),
        ("node parameters (beyond the defaults)", ", ".join(report["node_parameters"]) or "none"),
        ("DDS profile, publisher QoS", f"{report['dds_profile']}, {report['publisher_qos']}"),
        ("wall time", f"{report['wall_s']:.0f} s"),
        ("machine", report["machine"]),
    ]
    return "| soak | |\n|---|---|\n" + "\n".join(f"| {key} | {value} |" for key, value in rows) + "\n"


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the soak; returns the report (also written to ``args.out``)."""
    from ivif_ros.ros.diagnostics import drops_by_reason
    from ivif_ros.ros.faults import RAW_FAULTS, Injector

    out = Path(args.out)
    profile = None if args.no_profile else (Path(args.profile) if args.profile else _profile_path())
    if profile is not None and not profile.is_file():
        raise FileNotFoundError(f"DDS profile not found: {profile}")
    domain_id = args.domain_id or random.randint(1, 101)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):  # this process's DDS too
        env.pop(name, None)
        os.environ.pop(name, None)
    out.mkdir(parents=True, exist_ok=True)
    if profile is not None:
        for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
            env[name] = os.environ[name] = str(profile)
    profile_text = f"{profile} (node and publisher)" if profile else "none (Fast DDS defaults)"
    log_path = out / "fusion_node.log"
    namespace = f"/soak_{os.getpid()}"  # other nodes in the same domain cannot interfere
    command = [sys.executable, "-m", "ivif_ros.ros.fusion_node", "--ros-args", "-r", f"__ns:={namespace}",
               "-p", f"warmup_size:=[{float(args.width)}, {float(args.height)}]"]
    if args.params_file:
        command += ["--params-file", str(args.params_file)]
    for assignment in args.param:
        command += ["-p", assignment]
    with open(log_path, "w") as log:
        node = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"fusion_node pid {node.pid}, domain {domain_id}, DDS profile: {profile_text}, log {log_path}", flush=True)
    injector = Injector(domain_id, args.height, args.width, period_s=1.0 / args.rate, best_effort=args.best_effort,
                        namespace=namespace)
    faults = [name for name in RAW_FAULTS if name not in args.skip_faults]
    injected: list[str] = []
    fault_positions: list[tuple[int, str]] = []  # (good pairs sent before it, fault name)
    rss_samples: list[float] = []
    rss_after_warmup = rss_end = float("nan")
    status = None
    start = time.monotonic()
    try:
        if not injector.wait_ready(args.timeout, alive=lambda: node.poll() is None):
            raise RuntimeError(f"fusion_node did not become ready; see {log_path}")
        period = 1.0 / args.rate
        next_time = time.monotonic()
        for k in range(args.pairs):
            if k and args.fault_every and k % args.fault_every == 0 and faults:
                name = faults[len(injected) % len(faults)]
                fault_positions.append((len(injector.good_sent_at), name))
                RAW_FAULTS[name](injector)
                injected.append(name)
                next_time = time.monotonic()
            else:
                injector.send_good(wait=False)
            if k == WARM_UP_PAIRS:
                rss_after_warmup = _rss_mb(node.pid)
            if k % 100 == 0:
                rss_samples.append(_rss_mb(node.pid))
                if node.poll() is not None:
                    break
            if k % 1000 == 0 and k:
                print(f"  {k} pairs, {len(injected)} faults, node RSS {rss_samples[-1]:.0f} MiB", flush=True)
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
        injector.wait_for(lambda: False, 3.0)  # the last pairs and one more /diagnostics
        rss_end = _rss_mb(node.pid)
        status = injector.latest_status()
    finally:
        alive = node.poll() is None
        injector.close()
        if node.poll() is None:
            node.send_signal(2)
            try:
                node.wait(15)
            except subprocess.TimeoutExpired:
                node.kill()
    values = status[2] if status else {}
    latencies = []
    lost: list[str] = []  # each good pair not fused: its index and the fault before it
    for index, (stamp, sent) in enumerate(injector.good_sent_at):
        arrived = injector.first_arrival(stamp, sent)
        if arrived is None:
            lost.append(_describe_loss(index, fault_positions))
        else:
            latencies.append((arrived - sent) * 1e3)
    not_fused = len(lost)
    drops = drops_by_reason(values)
    report = {
        "pairs": args.pairs, "width": args.width, "height": args.height, "rate_hz": args.rate,
        "fault_every": args.fault_every, "faults_injected": len(injected), "fault_kinds": sorted(set(injected)),
        "good_sent": len(injector.good_sent_at), "good_fused": len(latencies), "good_not_fused": not_fused,
        "good_lost": lost,
        "drops": drops,
        "rss_after_warmup_mb": rss_after_warmup, "rss_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_after_warmup, "rss_max_mb": float(np.nanmax(rss_samples + [rss_end])),
        "worker_restarts": int(values.get("worker_restarts", -1)),
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else float("nan"),
        "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies else float("nan"),
        "node_processing_ms_p50": float(values.get("processing_ms_p50", "nan")),
        "node_processing_ms_p99": float(values.get("processing_ms_p99", "nan")),
        "node_alive": alive, "last_status": {"level": status[0], "message": status[1]} if status else None,
        "node_parameters": ([f"--params-file {args.params_file}"] if args.params_file else []) + list(args.param),
        "dds_profile": profile_text, "publisher_qos": "best effort" if args.best_effort else "reliable",
        "wall_s": time.monotonic() - start,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "backend": values.get("backend", "?"),
    }
    (out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "soak.md").write_text(_markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    """Console script ``ivif-soak``. Exit status 0 when the node survived with no worker restart."""
    parser = argparse.ArgumentParser(prog="ivif-soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000, help="pairs to publish (default 10000)")
    parser.add_argument("--rate", type=float, default=30.0, help="pairs per second (default 30)")
    parser.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    parser.add_argument("--height", type=int, default=512, help="frame height (default 512)")
    parser.add_argument("--fault-every", type=int, default=500, help="a fault every N pairs; 0 = none (default 500)")
    parser.add_argument("--skip-faults", nargs="*", default=[], help="fault names to leave out")
    parser.add_argument("--profile",
                        help="Fast DDS XML profile of both processes (default: config/fastdds_large_images.xml)")
    parser.add_argument("--no-profile", action="store_true",
                        help="Fast DDS defaults instead of the large-image profile")
    parser.add_argument("--best-effort", action="store_true",
                        help="publish best effort (sensor-data QoS) instead of reliable")
    parser.add_argument("--params-file", help="node parameter file (default: the node's built-in defaults)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a node parameter, as ros2 run's -p (repeatable), e.g. -p max_backlog:=4")
    parser.add_argument("--out", default="soak_out", help="folder for soak.json, soak.md and the node log")
    parser.add_argument("--domain-id", type=int, default=0, help="ROS domain (default: random 1..101)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the node to be ready")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.rate <= 0 or args.fault_every < 0 or min(args.width, args.height) < 32:
        print("ivif-soak: error: --pairs >= 1, --rate > 0, --fault-every >= 0, frames >= 32x32", file=sys.stderr)
        return 2
    try:
        report = soak(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line instead of a traceback
        print(f"ivif-soak: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(_markdown(report))
    print(f"written: {Path(args.out) / 'soak.json'}, {Path(args.out) / 'soak.md'}")
    return 0 if report["node_alive"] and report["worker_restarts"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
