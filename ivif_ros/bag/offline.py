"""``ivif-bag fuse``: run the fusion core over a bag offline (no DDS) into a new bag.

Two passes over the input. The first reads only the header stamps (straight from the CDR bytes)
and pairs thermal and RGB frames one-to-one by nearest stamp within the slop. The second decodes
each pair once both halves have been read, fuses it with ``FusionPipeline`` and writes the fused
image, the weight map (32FC1) and optionally its colour rendering, stamped like the RGB frame.
Memory stays bounded by the thermal/RGB offset, not by the bag size.
"""

from __future__ import annotations

import bisect
import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivif_ros import topics
from ivif_ros.backends.choice import DetectorChoice
from ivif_ros.core.batching import pair_signature
from ivif_ros.ros.conversions import ConversionError, array_to_image, to_bgr

from .errors import BagError
from .reader import decode_image
from .storage import (
    IMAGE_TYPE,
    bag_writer,
    check_no_overlap,
    default_qos,
    header_stamp_ns,
    iter_messages,
    normalize_topic,
    open_bag,
    require_topics,
    staged_outputs,
    topic_stats,
    typestore,
)

__all__ = ["FuseOptions", "FuseSummary", "fuse_bag", "pair_by_stamp"]

_STAGES = ("prepare", "enhance", "detect", "weights", "fuse")


@dataclass(frozen=True)
class FuseOptions:
    """Topics, pairing and pipeline settings of ``fuse_bag``.

    Attributes:
        thermal_topic: Input thermal image topic.
        rgb_topic: Input RGB image topic.
        slop_ms: Largest stamp difference of a pair.
        fused_topic: Output fused image topic (bgr8, or mono8 for a gray visible camera).
        weights_topic: Output weight map topic (32FC1, visible share 0..1).
        colored_topic: Output colour-mapped weight topic (bgr8), written when ``colored``.
        colored: Also write the colour-mapped weights.
        copy_inputs: Copy every topic of the input bag into the output (replay both in rviz).
        limit: Fuse at most this many pairs (None = all).
        batch: Consecutive pairs of one size fused per pipeline call (``FusionPipeline.fuse_batch``).
        mode: Pipeline mode (``default`` or ``seed``).
        detector: Backend, device and weights of the detector.
        storage: Output storage, ``mcap`` or ``sqlite3``.
        version: Output rosbag2 metadata version.
    """

    thermal_topic: str = topics.THERMAL_TOPIC
    rgb_topic: str = topics.RGB_TOPIC
    slop_ms: float = 20.0
    fused_topic: str = topics.FUSED_TOPIC
    weights_topic: str = topics.WEIGHTS_TOPIC
    colored_topic: str = topics.COLORED_TOPIC
    colored: bool = False
    copy_inputs: bool = False
    limit: int | None = None
    batch: int = 1
    mode: str = "default"
    detector: DetectorChoice = field(default_factory=DetectorChoice)
    storage: str = "mcap"
    version: int = 8

    def check(self) -> None:
        """Validate the options.

        Raises:
            BagError: A value is out of range; the message names it.
        """
        if not self.slop_ms >= 0:
            raise BagError(f"--slop-ms must be >= 0, got {self.slop_ms}")
        if self.limit is not None and self.limit < 1:
            raise BagError(f"--limit must be >= 1, got {self.limit}")
        if self.batch < 1:
            raise BagError(f"--batch must be >= 1, got {self.batch}")
        outputs = [self.fused_topic, self.weights_topic] + ([self.colored_topic] if self.colored else [])
        names = [normalize_topic(t) for t in outputs]
        if len(set(names)) != len(names):
            raise BagError(f"output topics must differ: {', '.join(outputs)}")
        if normalize_topic(self.thermal_topic) == normalize_topic(self.rgb_topic):
            raise BagError(f"thermal and RGB topics must differ, both are {self.thermal_topic!r}")


@dataclass
class FuseSummary:
    """What ``fuse_bag`` did.

    Attributes:
        output: The output bag.
        csv_path: The per-frame timing CSV.
        pairs: Pairs fused.
        unpaired: Input topic -> messages without a partner within the slop.
        skipped: Pairs the pipeline refused (message of the first one in ``problems``).
        topics: Output topic -> messages written.
        mean_ms: Mean pipeline time per pair.
        problems: Messages about skipped pairs.
        pipeline: ``FusionPipeline.describe()``.
    """

    output: Path
    csv_path: Path | None = None
    pairs: int = 0
    unpaired: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    mean_ms: float = 0.0
    problems: list[str] = field(default_factory=list)
    pipeline: dict[str, Any] = field(default_factory=dict)


def pair_by_stamp(thermal: Sequence[int], rgb: Sequence[int], slop_ns: int) -> list[tuple[int, int]]:
    """Pair two stamp lists one-to-one, closest stamps first.

    Args:
        thermal: Thermal stamps (ns), any order.
        rgb: RGB stamps (ns), any order.
        slop_ns: Largest difference of a pair.

    Returns:
        (thermal index, rgb index) pairs sorted by RGB stamp. Each index appears at most once;
        candidates are each RGB stamp's nearest thermal stamps on both sides, taken greedily by
        smallest difference.
    """
    order = sorted(range(len(thermal)), key=thermal.__getitem__)
    sorted_stamps = [thermal[i] for i in order]
    candidates = []
    for r, stamp in enumerate(rgb):
        k = bisect.bisect_left(sorted_stamps, stamp)
        for j in (k - 1, k, k + 1):
            if 0 <= j < len(sorted_stamps) and abs(sorted_stamps[j] - stamp) <= slop_ns:
                candidates.append((abs(sorted_stamps[j] - stamp), r, order[j]))
    candidates.sort()
    used_t: set[int] = set()
    used_r: set[int] = set()
    pairs = []
    for _, r, t in candidates:
        if r not in used_r and t not in used_t:
            used_r.add(r)
            used_t.add(t)
            pairs.append((t, r))
    pairs.sort(key=lambda p: (rgb[p[1]], p[1]))
    return pairs


def _create_pipeline(options: FuseOptions) -> Any:
    """FusionPipeline for the options; model and backend failures become BagError."""
    from ivif_ros.backends.base import BackendError
    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core.pipeline import FusionConfig
    from ivif_ros.models.registry import ModelError

    try:
        return create_pipeline(FusionConfig(mode=options.mode), options.detector, stream=True)
    except (ModelError, BackendError, ValueError) as exc:
        raise BagError(f"cannot create the fusion pipeline: {exc}") from exc


def fuse_bag(
    input_path: Path | str,
    output_path: Path | str,
    options: FuseOptions | None = None,
    *,
    csv_path: Path | str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    pipeline: Any = None,
) -> FuseSummary:
    """Fuse every thermal/RGB pair of a bag into a new bag.

    Args:
        input_path: Input bag.
        output_path: Output bag folder to create.
        options: Topics, slop, pipeline settings, output storage.
        csv_path: Per-frame timing CSV (None = ``<output>.csv`` beside the bag folder).
        overwrite: Replace an existing output bag and CSV.
        progress: Show a tqdm progress bar on stderr.
        pipeline: A ready ``FusionPipeline`` (tests); built from ``options`` when None.

    Returns:
        A FuseSummary.

    The bag and the CSV are written into a temporary sibling folder and moved into place only
    when every pair was handled; after any error or interruption nothing partial remains.

    Raises:
        BagError: Missing/corrupt input, missing topics, no pairs within the slop, the output
            exists or overlaps the input, or the pipeline cannot be built.
    """
    from tqdm import tqdm

    options = options or FuseOptions()
    options.check()
    input_path, output_path = Path(input_path), Path(output_path)
    csv_path = Path(csv_path) if csv_path is not None else output_path.with_name(output_path.name + ".csv")
    check_no_overlap([output_path, csv_path], [input_path])
    summary = FuseSummary(output_path, csv_path)

    with open_bag(input_path) as reader:
        found = require_topics(reader, [options.thermal_topic, options.rgb_topic])
        thermal_entry, rgb_entry = found[options.thermal_topic], found[options.rgb_topic]
        pairs, index_of = _plan(reader, thermal_entry, rgb_entry, options)
        summary.unpaired = {
            thermal_entry.topic: thermal_entry.count - len(pairs),
            rgb_entry.topic: rgb_entry.count - len(pairs),
        }
        if options.limit is not None:
            pairs = pairs[: options.limit]
            index_of = {key: p for key, p in index_of.items() if p < len(pairs)}
        pipe = pipeline if pipeline is not None else _create_pipeline(options)
        summary.pipeline = dict(pipe.describe()) if hasattr(pipe, "describe") else {}

        outputs = {options.fused_topic: IMAGE_TYPE, options.weights_topic: IMAGE_TYPE}
        if options.colored:
            outputs[options.colored_topic] = IMAGE_TYPE
        copied = list(topic_stats(reader).values()) if options.copy_inputs else []
        clash = {normalize_topic(t) for t in outputs} & {normalize_topic(e.topic) for e in copied}
        if clash:
            raise BagError(f"output topics {sorted(clash)} exist in the input; choose other names")
        summary.topics = {normalize_topic(t): 0 for t in outputs} | {e.topic: 0 for e in copied}

        read_connections = [c for e in copied for c in e.connections] or list(
            thermal_entry.connections + rgb_entry.connections
        )
        roles = {thermal_entry.topic: 0, rgb_entry.topic: 1}
        with staged_outputs([output_path, csv_path], overwrite=overwrite) as (stage_bag, stage_csv):
            with (
                bag_writer(stage_bag, storage=options.storage, version=options.version) as writer,
                stage_csv.open("w", newline="") as csv_file,
                tqdm(total=len(pairs), unit="pair", disable=not progress, desc="fuse") as bar,
            ):
                fuser = _PairFuser(pipe, writer, outputs, options, summary, csv.DictWriter(csv_file, _csv_fields()))
                copy_conns = {
                    c.id: writer.add_connection(
                        c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest,
                        offered_qos_profiles=c.ext.offered_qos_profiles,
                    )
                    for e in copied
                    for c in e.connections
                }
                pending: dict[int, dict[int, tuple[int, bytes]]] = {}
                positions = dict.fromkeys(roles, 0)
                for connection, log_ns, raw in iter_messages(reader, read_connections):
                    if connection.id in copy_conns:
                        writer.write(copy_conns[connection.id], log_ns, raw)
                        summary.topics[connection.topic] += 1
                    role = roles.get(connection.topic)
                    if role is None:
                        continue
                    pair_index = index_of.get((role, positions[connection.topic]))
                    positions[connection.topic] += 1
                    if pair_index is None:
                        continue
                    halves = pending.setdefault(pair_index, {})
                    halves[role] = (log_ns, raw)
                    if len(halves) == 2:
                        fuser(pair_index, pending.pop(pair_index))
                        bar.update(1)
                        if summary.pairs + summary.skipped == len(pairs) and not copied:
                            break
                fuser.flush()
            if pairs and summary.pairs == 0:
                raise BagError(f"no pair could be fused: {summary.problems[0]}")
    summary.mean_ms = fuser.total_ms / summary.pairs if summary.pairs else 0.0
    return summary


def _plan(
    reader: Any, thermal_entry: Any, rgb_entry: Any, options: FuseOptions
) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
    """First pass: header stamps of both topics, paired by nearest stamp.

    Returns:
        (pairs as (thermal position, rgb position), {(role, position): pair index}); role 0 is
        thermal, 1 is RGB; positions count messages per topic in log-time order.

    Raises:
        BagError: Corrupt data, or no pair within the slop.
    """
    stamps: dict[str, list[int]] = {thermal_entry.topic: [], rgb_entry.topic: []}
    for connection, _log_ns, raw in iter_messages(
        reader, list(thermal_entry.connections + rgb_entry.connections)
    ):
        stamps[connection.topic].append(header_stamp_ns(raw))
    thermal, rgb = stamps[thermal_entry.topic], stamps[rgb_entry.topic]
    pairs = pair_by_stamp(thermal, rgb, int(options.slop_ms * 1e6))
    if not pairs:
        gap = min(abs(t - r) for t in thermal[:200] for r in rgb[:200]) / 1e6 if thermal and rgb else float("nan")
        raise BagError(
            f"no thermal/RGB pair within --slop-ms {options.slop_ms:g} "
            f"(closest stamps among the first 200 differ by {gap:.1f} ms)"
        )
    index_of = {}
    for k, (t, r) in enumerate(pairs):
        index_of[(0, t)] = k
        index_of[(1, r)] = k
    return pairs, index_of


def _csv_fields() -> list[str]:
    return [
        "pair", "stamp_ns", "thermal_stamp_ns", "offset_ms", "width", "height", "decode_ms",
        *(f"{stage}_ms" for stage in _STAGES), "pipeline_ms", "encode_ms", "total_ms",
    ]


class _PairFuser:
    """Decodes, fuses and writes pairs into the output bag and the timing CSV.

    Args:
        pipe: The FusionPipeline.
        writer: Open output writer.
        outputs: Output topic -> message type.
        options: The fuse options.
        summary: Updated with counts and problems.
        table: CSV writer (the header is written here).
    """

    def __init__(
        self,
        pipe: Any,
        writer: Any,
        outputs: dict[str, str],
        options: FuseOptions,
        summary: FuseSummary,
        table: csv.DictWriter,
    ) -> None:
        from ivif_ros.core.errors import FusionInputError

        self._pipe = pipe
        self._writer = writer
        self._options = options
        self._summary = summary
        self._table = table
        self._input_error = FusionInputError
        self._store = typestore()
        self._image_cls = self._store.types[IMAGE_TYPE]
        qos = [default_qos()]
        self._conns = {
            normalize_topic(t): writer.add_connection(
                normalize_topic(t), m, typestore=self._store, offered_qos_profiles=qos
            )
            for t, m in outputs.items()
        }
        self.total_ms = 0.0
        self._queue: list[tuple] = []
        table.writeheader()

    def __call__(self, pair_index: int, halves: dict[int, tuple[int, bytes]]) -> None:
        """Fuse one pair (role 0 = thermal, 1 = RGB -> (log time, raw CDR)); with ``options.batch`` > 1
        the pair waits for the next ones of its size (``flush`` fuses what is left).

        Raises:
            BagError: A message cannot be decoded.
        """
        start = time.perf_counter()
        _, thermal_raw = halves[0]
        rgb_log, rgb_raw = halves[1]
        thermal_msg, thermal = decode_image(thermal_raw, where=f"thermal of pair {pair_index}")
        rgb_msg, rgb = decode_image(rgb_raw, where=f"RGB of pair {pair_index}")
        try:
            visible = to_bgr(rgb, rgb_msg.encoding)
            thermal = to_bgr(thermal, thermal_msg.encoding)
        except ConversionError as exc:
            raise BagError(f"pair {pair_index}: {exc}") from exc
        item = (pair_index, rgb_log, rgb_msg, thermal_msg, thermal, visible, time.perf_counter() - start)
        if self._queue and (
            len(self._queue) >= self._options.batch
            or pair_signature(*self._queue[0][4:6]) != pair_signature(thermal, visible)
        ):
            self.flush()
        self._queue.append(item)
        if len(self._queue) >= self._options.batch:
            self.flush()

    def flush(self) -> None:
        """Fuse and write the queued pairs (one batch; pair by pair when the batch fails)."""
        queue, self._queue = self._queue, []
        if not queue:
            return
        started = time.perf_counter()
        try:
            results = self._pipe.fuse_batch([(item[4], item[5]) for item in queue]) if len(queue) > 1 else None
        except self._input_error:
            results = None
        if results is not None:
            share = (time.perf_counter() - started) / len(queue)
            for item, result in zip(queue, results, strict=True):
                self._emit(item, result, share)
            return
        for item in queue:
            started = time.perf_counter()
            try:
                result = self._pipe(item[4], item[5])
            except self._input_error as exc:
                self._summary.skipped += 1
                self._summary.problems.append(f"pair {item[0]} (RGB stamp {_stamp(item[2])} ns): {exc}")
                continue
            self._emit(item, result, time.perf_counter() - started)

    def _emit(self, item: tuple, result: Any, pipeline_s: float) -> None:
        """Write the outputs of one fused pair and its CSV row."""
        pair_index, rgb_log, rgb_msg, thermal_msg, _, visible, decode_s = item
        fused_at = time.perf_counter()
        options = self._options
        images = [
            (options.fused_topic, result.fused, "bgr8" if result.fused.ndim == 3 else "mono8"),
            (options.weights_topic, np.asarray(result.weights, dtype=np.float32), "32FC1"),
        ]
        if options.colored:
            images.append((options.colored_topic, result.weights_colored(), "bgr8"))
        for topic, array, encoding in images:
            msg = array_to_image(array, encoding, header=rgb_msg.header, msg_cls=self._image_cls)
            name = normalize_topic(topic)
            self._writer.write(self._conns[name], rgb_log, self._store.serialize_cdr(msg, IMAGE_TYPE))
            self._summary.topics[name] += 1
        encode_s = time.perf_counter() - fused_at
        self._summary.pairs += 1
        stamp, thermal_stamp = _stamp(rgb_msg), _stamp(thermal_msg)
        row = {
            "pair": pair_index,
            "stamp_ns": stamp,
            "thermal_stamp_ns": thermal_stamp,
            "offset_ms": round((thermal_stamp - stamp) / 1e6, 3),
            "width": int(visible.shape[1]),
            "height": int(visible.shape[0]),
            "decode_ms": round(decode_s * 1e3, 3),
            "pipeline_ms": round(pipeline_s * 1e3, 3),
            "encode_ms": round(encode_s * 1e3, 3),
            "total_ms": round((decode_s + pipeline_s + encode_s) * 1e3, 3),
        }
        for stage in _STAGES:
            row[f"{stage}_ms"] = round(float(result.timings.get(stage, 0.0)), 3)
        self._table.writerow(row)
        self.total_ms += row["pipeline_ms"]


def _stamp(msg: Any) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
