"""``ivif-bag``: make rosbag2 bags from image folders, replay them, fuse them offline.

Subcommands (``ivif-bag SUBCOMMAND --help`` for the options):

- ``make``: paired ir/vis folders (LLVIP, VOT-RGBT, RoadScene layouts) -> bag with thermal and
  RGB ``sensor_msgs/msg/Image`` topics, stamped at a rate with optional jitter and offset.
- ``play``: publish a bag's image topics through rclpy with the recorded timing.
- ``fuse``: fuse every pair of a bag offline into a new bag plus a per-frame timing CSV.
- ``info``: list a bag's topics, types, counts and duration.

Errors print one line on stderr and exit with status 1; an option value out of range exits with
status 2 (usage), Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ivif_ros import topics
from ivif_ros.backends.choice import add_detector_arguments
from ivif_ros.bag.errors import BagError
from ivif_ros.cli.dependencies import ROS_MODULES, require

__all__ = ["command_fuse", "command_info", "command_make", "command_play", "main"]

PROG = "ivif-bag"


class UsageError(BagError):
    """An option value is rejected before any work starts (exit status 2)."""


def _error(message: str, status: int = 1) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _checked(options: Any) -> Any:
    """``options`` after its ``check()``; a rejected value becomes a :class:`UsageError`."""
    try:
        options.check()
    except BagError as exc:
        raise UsageError(str(exc)) from None
    return options


def command_make(
    output: Path,
    source: Path | None = None,
    *,
    ir: Path | None = None,
    vis: Path | None = None,
    limit: int | None = None,
    start_time: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **options: object,
) -> int:
    """Write a bag from paired image folders.

    Args:
        output: Bag folder to create.
        source: Dataset or sequence folder (layout detected), or None with ``ir`` and ``vis``.
        ir: Explicit infrared folder.
        vis: Explicit visible folder.
        limit: Write only the first N pairs.
        start_time: Stamp of the first frame, seconds since the epoch (decimal string).
        overwrite: Replace an existing bag.
        progress: Show a progress bar.
        **options: Fields of ``ivif_ros.bag.MakeOptions``.

    Returns:
        Exit status (0).

    Raises:
        BagError: Any failure (see ``make_bag``).
    """
    from tqdm import tqdm

    from ivif_ros.bag import MakeOptions, find_image_pairs, make_bag

    pairs, problems = find_image_pairs(source, ir_dir=ir, vis_dir=vis)
    if problems:
        print(f"{len(problems)} unpaired file(s) ignored, e.g. {problems[0]}", file=sys.stderr)
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be >= 1, got {limit}")
        pairs = pairs[:limit]
    start_ns = None
    if start_time is not None:
        try:
            start_ns = int(Decimal(start_time) * 1_000_000_000)
        except InvalidOperation:
            raise UsageError(f"--start-time must be seconds since the epoch, got {start_time!r}") from None
    make_options = _checked(MakeOptions(start_ns=start_ns, **options))  # before the progress bar
    with tqdm(total=len(pairs), unit="pair", desc="make", disable=not progress) as bar:
        summary = make_bag(pairs, output, make_options, overwrite=overwrite, progress=bar.update)
    counts = ", ".join(f"{topic} {count}" for topic, count in summary.topics.items())
    duration = (summary.rgb_stamps_ns[-1] - summary.rgb_stamps_ns[0]) / 1e9
    print(f"wrote {summary.path} ({make_options.storage}): {summary.frames} pairs over {duration:.2f} s; {counts}")
    return 0


def command_play(bag: Path, **options: object) -> int:
    """Publish a bag with its recorded timing.

    Args:
        bag: The bag.
        **options: Fields of ``ivif_ros.bag.player.PlayOptions``.

    Returns:
        Exit status (0, or 130 when interrupted).

    Raises:
        BagError: Any failure (see ``play_bag``).
    """
    from ivif_ros.bag.player import PlayOptions, play_bag

    play_options = _checked(PlayOptions(**options))
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())  # stop cleanly, like Ctrl-C
    try:
        summary = play_bag(bag, play_options, stop=stop, log=lambda line: print(line, file=sys.stderr))
    finally:
        signal.signal(signal.SIGTERM, previous)
    counts = ", ".join(f"{topic} {count}" for topic, count in summary.published.items())
    state = "stopped" if summary.stopped else "done"
    print(f"{state}: {summary.passes} pass(es) in {summary.wall_s:.1f} s; published {counts}")
    return 130 if summary.stopped else 0


def command_fuse(
    bag: Path,
    output: Path | None = None,
    *,
    csv: Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **options: object,
) -> int:
    """Fuse a bag offline into a new bag.

    Args:
        bag: Input bag.
        output: Output bag folder (default ``<bag>_fused``).
        csv: Timing CSV (default ``<output>.csv``).
        overwrite: Replace existing outputs.
        progress: Show a progress bar.
        **options: Fields of ``ivif_ros.bag.offline.FuseOptions``.

    Returns:
        Exit status (0).

    Raises:
        BagError: Any failure (see ``fuse_bag``).
    """
    from ivif_ros.backends.choice import DetectorChoice
    from ivif_ros.bag.offline import FuseOptions, fuse_bag

    detector = DetectorChoice(backend=str(options.pop("backend", "auto")), device=str(options.pop("device", "auto")))
    options["detector"] = detector.for_mode(str(options.get("mode", "default")), options.pop("model", None))  # type: ignore[arg-type]
    bag = Path(bag)
    output = output or bag.with_name(bag.name.removesuffix(".mcap").removesuffix(".db3") + "_fused")
    fuse_options = _checked(FuseOptions(**options))
    summary = fuse_bag(bag, output, fuse_options, csv_path=csv, overwrite=overwrite, progress=progress)
    for problem in summary.problems[:3]:
        print(f"skipped {problem}", file=sys.stderr)
    unpaired = ", ".join(f"{topic} {n}" for topic, n in summary.unpaired.items() if n)
    counts = ", ".join(f"{topic} {count}" for topic, count in summary.topics.items())
    print(
        f"wrote {summary.output}: {summary.pairs} fused pairs, {summary.mean_ms:.1f} ms/pair "
        f"({summary.pipeline.get('backend', '?')} on {summary.pipeline.get('device', '?')}); {counts}"
        + (f"; unpaired: {unpaired}" if unpaired else "")
        + (f"; skipped {summary.skipped}" if summary.skipped else "")
    )
    print(f"timings: {summary.csv_path}")
    return 0


def command_info(bag: Path) -> int:
    """Print a bag's topics, types, message counts and duration.

    Args:
        bag: The bag.

    Returns:
        Exit status (0).

    Raises:
        BagError: Missing or corrupt bag.
    """
    from ivif_ros.bag.storage import open_bag, topic_stats

    with open_bag(bag) as reader:
        stats = topic_stats(reader)
        duration = (reader.end_time - reader.start_time) / 1e9 if reader.message_count else 0.0
        print(f"{bag}: {reader.message_count} messages, {duration:.3f} s, {len(stats)} topics")
        for name, entry in sorted(stats.items()):
            print(f"  {name}  {entry.msgtype}  {entry.count}")
    return 0


def _add_topic_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--thermal-topic", default=topics.THERMAL_TOPIC, help="thermal image topic (%(default)s)")
    parser.add_argument("--rgb-topic", default=topics.RGB_TOPIC, help="RGB image topic (%(default)s)")


def _add_output_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage plugin (%(default)s)")
    parser.add_argument(
        "--bag-version", dest="version", type=int, choices=(8, 9), default=8,
        help="rosbag2 metadata version: 8 for Humble/Jazzy tools, 9 for Kilted (%(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``ivif-bag`` argument parser (one subparser per command)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    make = sub.add_parser("make", help="write a bag from paired ir/vis image folders")
    make.add_argument("source", nargs="?", type=Path, help="dataset or VOT-RGBT sequence folder (layout detected)")
    make.add_argument("-o", "--output", type=Path, required=True, help="bag folder to create")
    make.add_argument("--ir", type=Path, help="explicit infrared folder (with --vis)")
    make.add_argument("--vis", type=Path, help="explicit visible folder (with --ir)")
    make.add_argument("--limit", type=int, help="only the first N pairs")
    make.add_argument("--rate", type=float, default=10.0, help="frame rate, Hz (%(default)s)")
    make.add_argument("--jitter-ms", type=float, default=0.0, help="uniform stamp jitter per camera, ± ms")
    make.add_argument("--offset-ms", type=float, default=0.0, help="thermal stamp minus RGB stamp, ms")
    make.add_argument("--start-time", help="stamp of the first frame, s since the epoch (default: now)")
    make.add_argument("--seed", type=int, default=0, help="jitter seed (%(default)s)")
    _add_topic_args(make)
    make.add_argument("--thermal-frame", default="thermal_camera", help="thermal frame_id (%(default)s)")
    make.add_argument("--rgb-frame", default="rgb_camera", help="RGB frame_id (%(default)s)")
    make.add_argument("--rgb-encoding", choices=("bgr8", "rgb8"), default="bgr8", help="RGB encoding (%(default)s)")
    make.add_argument("--camera-info", action="store_true", help="also write <camera>/camera_info topics")
    _add_output_args(make)

    play = sub.add_parser("play", help="publish a bag through rclpy with the recorded timing")
    play.add_argument("bag", type=Path, help="bag folder, .mcap or .db3 file")
    play.add_argument("-r", "--rate", type=float, default=1.0, help="speed factor (%(default)s)")
    play.add_argument("-l", "--loop", action="store_true", help="start again at the end until Ctrl-C")
    play.add_argument("--start-offset", type=float, default=0.0, help="seconds into the bag to start at")
    play.add_argument("--topics", nargs="+", default=(), help="topics to publish (default: Image + CameraInfo)")
    play.add_argument(
        "--restamp", action="store_true",
        help="stamp messages with the wall-clock time of publication (use with --loop)",
    )
    play.add_argument("--clock", action="store_true", help="also publish /clock (for use_sim_time)")
    play.add_argument("--qos-depth", type=int, default=5, help="keep-last depth (%(default)s)")
    play.add_argument("--best-effort", action="store_true", help="best-effort instead of reliable")
    play.add_argument(
        "--wait-for-subscribers", type=float, default=3.0,
        help="seconds to wait for a subscriber on each image topic before playing (%(default)s)",
    )
    play.add_argument("--domain-id", type=int, help="ROS domain id (default: ROS_DOMAIN_ID)")

    fuse = sub.add_parser("fuse", help="fuse a bag offline into a new bag + timing CSV")
    fuse.add_argument("bag", type=Path, help="input bag")
    fuse.add_argument("-o", "--output", type=Path, help="output bag folder (default: <bag>_fused)")
    fuse.add_argument("--csv", type=Path, help="per-frame timing CSV (default: <output>.csv)")
    _add_topic_args(fuse)
    fuse.add_argument(
        "--slop-ms", type=float, default=20.0,
        help="largest stamp difference of a pair, ms (%(default)s, the node's slop)",
    )
    fuse.add_argument("--fused-topic", default=topics.FUSED_TOPIC, help="output fused topic (%(default)s)")
    fuse.add_argument("--weights-topic", default=topics.WEIGHTS_TOPIC, help="output 32FC1 weight topic (%(default)s)")
    fuse.add_argument("--colored", action="store_true", help="also write the colour-mapped weights")
    fuse.add_argument("--colored-topic", default=topics.COLORED_TOPIC, help="colour weight topic (%(default)s)")
    fuse.add_argument("--copy-inputs", action="store_true", help="copy the input topics into the output bag")
    fuse.add_argument("--limit", type=int, help="fuse only the first N pairs")
    fuse.add_argument("--batch", type=int, default=1, help="consecutive pairs of one size fused per call (%(default)s)")
    fuse.add_argument("--mode", choices=("default", "seed"), default="default", help="pipeline mode (%(default)s)")
    add_detector_arguments(fuse)
    _add_output_args(fuse)

    info = sub.add_parser("info", help="list a bag's topics")
    info.add_argument("bag", type=Path, help="bag folder, .mcap or .db3 file")
    return parser


_COMMANDS = {"make": command_make, "play": command_play, "fuse": command_fuse, "info": command_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``ivif-bag``.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 on an error (one line on stderr), 130 on Ctrl-C.
    """
    args = vars(build_parser().parse_args(argv))
    if args["command"] == "play":
        require(PROG, "play (DDS publishing)", ROS_MODULES)
    command = _COMMANDS[args.pop("command")]
    if "topics" in args:
        args["topics"] = tuple(args["topics"])
    try:
        return command(**args)
    except UsageError as exc:
        return _error(str(exc), status=2)
    except BagError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
