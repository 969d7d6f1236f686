"""``ivif-bench``: per-stage timing of the fusion core and of each detector backend.

For every frame size and every backend variant it measures, after a warm-up, N runs of

* the full path a ROS node takes: ``Image`` messages → arrays (``msg_in``), the pipeline stages
  (``prepare``, ``enhance``, ``detect``, ``weights``, ``fuse``), fused array → ``Image`` (``msg_out``);
* the detector alone at the pipeline's detector input size.

It reports median and p95 per stage, pairs/s (1000 / median total), peak resident memory (and
peak CUDA memory), the thread settings, and the machine (CPU model, cores, load average before and
after each measurement: on a shared machine the numbers are only comparable at similar load).
Output: a Markdown table on stdout, and ``bench.json`` + ``bench.md`` under ``--out``.

Backend variants are ``name`` or ``name:key=value,...`` with backend options, e.g.
``onnxruntime:intra_op_threads=1``, ``torch:fp16=1,cuda_graphs=1``, ``tensorrt:fp16=1``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ivif_ros.cli.options import add_set_argument

__all__ = ["main", "bench_command", "parse_variant", "parse_size", "machine_info", "summarize"]

STAGES = ("msg_in", "prepare", "enhance", "detect", "weights", "fuse", "msg_out")
DEFAULT_SIZES = ("640x512", "1280x1024")
CPU_VARIANTS = ("onnxruntime", "onnxruntime:intra_op_threads=2", "torch", "torch:threads=1")
CUDA_VARIANTS = (
    "torch:fp16=0",
    "torch:fp16=1",
    "torch:fp16=0,cuda_graphs=1",
    "torch:fp16=1,cuda_graphs=1",
    "tensorrt:fp16=1",
)


def parse_size(text: str) -> tuple[int, int]:
    """``"640x512"`` (width x height) → ``(512, 640)`` (height, width).

    Raises:
        ValueError: not ``WxH`` with positive integers.
    """
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be WIDTHxHEIGHT, e.g. 640x512, got {text!r}") from None
    if width < 32 or height < 32:
        raise ValueError(f"size must be at least 32x32, got {text!r}")
    return height, width


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"torch:fp16=1,cuda_graphs=1"`` → ``("torch", {"fp16": True, "cuda_graphs": True})``.

    ``fp16``, ``cuda_graphs`` and ``channels_last`` values 0/1 become booleans.

    Raises:
        ValueError: an option without ``=``.
    """
    name, _, rest = text.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"backend option must be key=value, got {item!r} in {text!r}")
        parsed = _parse_value(value)
        if key in ("fp16", "cuda_graphs", "channels_last") and isinstance(parsed, int):
            parsed = bool(parsed)
        options[key.strip()] = parsed
    return name.strip(), options


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, cores, library versions, thread settings and the GPU when CUDA is usable."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()),
        "gpu": None,
    }
    try:
        import cv2

        info["opencv"] = cv2.__version__
        info["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ``clear_refs``); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, p95, mean, min and max of millisecond samples."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        return dict.fromkeys(("median", "p95", "mean", "min", "max"), float("nan"))
    return {
        "median": float(np.median(values)),
        "p95": float(np.percentile(values, 95)),
        "mean": float(values.mean()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _load_pairs(size: tuple[int, int], data: Sequence[str] | None, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic pairs (a moving scene), or real pairs from ``data = (ir, vis)`` resized to ``size``."""
    import cv2

    height, width = size
    if not data:
        from ivif_ros.core.synthetic import synthetic_sequence

        return synthetic_sequence(count, height, width)
    from ivif_ros.data import find_pairs, read_image

    found, _ = find_pairs(ir=data[0], vis=data[1])
    if not found:
        raise ValueError(f"no matching pairs under {data[0]} and {data[1]}")
    pairs = []
    for _, ir_path, vis_path in found[:count]:
        ir, vis = read_image(ir_path, role="ir"), read_image(vis_path, role="vis")
        pairs.append((cv2.resize(ir, (width, height), interpolation=cv2.INTER_AREA),
                      cv2.resize(vis, (width, height), interpolation=cv2.INTER_AREA)))
    return pairs


def _message_functions() -> tuple[Callable | None, Callable | None, str | None]:
    """(array_to_image, image_to_array, reason-if-missing)."""
    try:
        from ivif_ros.ros.conversions import array_to_image, image_to_array

        array_to_image(np.zeros((2, 2), np.uint8), "mono8")  # needs rclpy's sensor_msgs
    except Exception as error:  # rclpy not sourced: the stages are skipped, and said so
        return None, None, f"message conversion not timed ({type(error).__name__}: {error})"
    return array_to_image, image_to_array, None


def _encoding(array: np.ndarray) -> str:
    if array.ndim == 3:
        return "bgr8"
    return {np.dtype(np.uint8): "mono8", np.dtype(np.uint16): "mono16", np.dtype(np.float32): "32FC1"}[array.dtype]


def _make_pipeline(config, choice, use_torch: bool):
    """A ``FusionPipeline`` whose default-mode detector is the requested backend variant."""
    from ivif_ros.backends.choice import create_pipeline

    return create_pipeline(config, choice, use_torch=True if use_torch else None)


def _bench_pipeline(pipeline, pairs, runs: int, warmup: int, msg_fns) -> dict[str, Any]:
    to_msg, from_msg, _ = msg_fns
    messages = None
    if to_msg is not None:
        messages = [(to_msg(ir, _encoding(ir)), to_msg(vis, _encoding(vis))) for ir, vis in pairs]
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    samples["total"] = []
    _reset_peak_rss()
    for index in range(warmup + runs):
        ir, vis = pairs[index % len(pairs)]
        start = time.perf_counter()
        if messages is not None:
            ir_msg, vis_msg = messages[index % len(messages)]
            ir, vis = from_msg(ir_msg), from_msg(vis_msg)
        msg_in = time.perf_counter()
        result = pipeline(ir, vis)
        piped = time.perf_counter()
        if to_msg is not None:
            to_msg(result.fused, _encoding(result.fused))
        end = time.perf_counter()
        if index < warmup:
            continue
        if messages is not None:
            samples["msg_in"].append((msg_in - start) * 1e3)
            samples["msg_out"].append((end - piped) * 1e3)
        for stage in ("prepare", "enhance", "detect", "weights", "fuse"):
            samples[stage].append(float(result.timings.get(stage, 0.0)))
        samples["total"].append((end - start) * 1e3)
    stats = {stage: summarize(values) for stage, values in samples.items() if values}
    return {"stages": stats, "pairs_per_s": 1000.0 / stats["total"]["median"], "peak_rss_mb": _peak_rss_mb()}


def _bench_batched(pipeline, pairs, batch: int, runs: int, warmup: int) -> dict[str, Any]:
    """The offline path: ``fuse_batches`` over ``warmup + runs`` batches of ``batch`` pairs.

    Stage times are each pair's share; ``total`` is the time between consecutive batches coming
    out (double-buffered on CUDA, so it includes the overlap), per batch; pairs/s = batch / total.
    """
    groups = [
        [pairs[(start + k) % len(pairs)] for k in range(batch)] for start in range(0, (warmup + runs) * batch, batch)
    ]
    samples: dict[str, list[float]] = {stage: [] for stage in ("prepare", "enhance", "detect", "weights", "fuse")}
    samples["total"] = []
    _reset_peak_rss()
    start = time.perf_counter()
    for index, results in enumerate(pipeline.fuse_batches(groups)):
        now = time.perf_counter()
        if index >= warmup:
            samples["total"].append((now - start) * 1e3)
            for stage in samples:
                if stage != "total":
                    samples[stage].append(float(results[0].timings.get(stage, 0.0)))
        start = now
    stats = {stage: summarize(values) for stage, values in samples.items() if values}
    return {"stages": stats, "pairs_per_s": 1000.0 * batch / stats["total"]["median"], "peak_rss_mb": _peak_rss_mb()}


def _bench_detector(backend, pair: np.ndarray, runs: int, warmup: int) -> dict[str, Any]:
    times = []
    for index in range(warmup + runs):
        start = time.perf_counter()
        backend(pair)
        if index >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    stats = summarize(times)
    return {"ms": stats, "pairs_per_s": 1000.0 * len(pair) / stats["median"]}


def _cuda_peak_mb(device: str) -> float | None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _reset_cuda_peak(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _error_text(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, (RuntimeError, ValueError)) else f"{type(error).__name__}: {text}"


class _ReportWriter:
    """Rewrites ``bench.json`` and ``bench.md`` (atomically) after every finished row, so a backend
    that kills the process still leaves the rows measured before it."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def write(self, report: dict[str, Any]) -> str:
        markdown = render_markdown(report)
        if self.folder is not None:
            for name, text in (("bench.json", json.dumps(report, indent=1, default=str)), ("bench.md", markdown)):
                tmp = self.folder / f".{name}.tmp"
                tmp.write_text(text)
                os.replace(tmp, self.folder / name)
        return markdown


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: machine, pipeline table (median / p95 ms per stage), detector table."""
    machine = report["machine"]
    lines = [
        "# ivif-bench",
        "",
        f"- CPU: {machine['cpu']} ({machine['usable_cores']} usable of {machine['logical_cores']} logical cores)",
        f"- GPU: {machine.get('gpu') or 'none (no CUDA device)'}",
        f"- torch {machine['torch']} (threads {machine['torch_threads']}), onnxruntime {machine.get('onnxruntime')}, "
        f"opencv {machine.get('opencv')} (threads {machine.get('opencv_threads')})",
        f"- device {report['device']}, runs {report['runs']} after {report['warmup']} warm-up, "
        f"inputs {report['inputs']}",
        f"- config overrides: {report['overrides'] or 'none (product defaults)'}",
        "",
        "## Full pipeline (median ms; p95 in parentheses)",
        "",
        "Batch > 1 rows are the offline batched path (`fuse_batches`): stages are each pair's share,",
        "total is per batch; pairs/s counts every pair.",
        "",
        "| size | backend | batch | " + " | ".join(STAGES)
        + " | total | pairs/s | peak RSS MB | load avg 1m (before→after) |",
        "|" + "---|" * (len(STAGES) + 7),
    ]
    for row in report["pipeline"]:
        if "error" in row:
            lines.append(f"| {row['size']} | {row['variant']} | {row.get('batch', 1)} | skipped: {row['error']} |")
            continue
        stages = row["stages"]
        cells = [
            f"{_fmt(stages[s]['median'], 2)} ({_fmt(stages[s]['p95'], 2)})" if s in stages else "–" for s in STAGES
        ]
        total = stages["total"]
        lines.append(
            f"| {row['size']} | {row['variant']} | {row.get('batch', 1)} | " + " | ".join(cells)
            + f" | {_fmt(total['median'])} ({_fmt(total['p95'])}) | **{_fmt(row['pairs_per_s'])}** | "
            + f"{_fmt(row['peak_rss_mb'], 0)} | {row['load_before'][0]:.2f}→{row['load_after'][0]:.2f} |"
        )
    lines += [
        "",
        "## Detector alone (at the pipeline's detector input size)",
        "",
        "| size | detector input | backend | batch | settings | median ms per call | p95 ms | pairs/s | load avg 1m |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["detector"]:
        if "error" in row:
            lines.append(
                f"| {row['size']} | {row.get('input', '')} | {row['variant']} | {row.get('batch', 1)} | "
                f"skipped: {row['error']} | | | | |"
            )
            continue
        settings = ", ".join(f"{k}={v}" for k, v in row["describe"].items() if k not in ("backend", "onnx", "engine"))
        lines.append(
            f"| {row['size']} | {row['input']} | {row['variant']} | {row.get('batch', 1)} | {settings} | "
            f"{_fmt(row['ms']['median'], 2)} | "
            f"{_fmt(row['ms']['p95'], 2)} | **{_fmt(row['pairs_per_s'])}** | {row['load_before'][0]:.2f} |"
        )
    for note in report.get("notes", []):
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


def bench_command(
    sizes: Sequence[str] = DEFAULT_SIZES,
    variants: Sequence[str] | None = None,
    device: str = "cpu",
    runs: int = 30,
    warmup: int = 5,
    threads: int | None = None,
    model: str | None = None,
    data: Sequence[str] | None = None,
    out: str | None = None,
    overrides: Sequence[str] = (),
    compare: Sequence[Sequence[str]] = (),
    use_torch: bool = False,
    skip_pipeline: bool = False,
    skip_detector: bool = False,
    quiet: bool = False,
    batches: Sequence[int] = (1,),
) -> int:
    """Run the benchmark; see the module docstring.

    Args:
        sizes: frame sizes ``WxH``.
        variants: backend variants (default: ``CPU_VARIANTS`` or ``CUDA_VARIANTS`` by device).
        device: ``cpu``, ``cuda[:N]`` or ``auto``.
        runs: measured runs per configuration (after ``warmup``).
        warmup: unmeasured runs first.
        threads: ``torch.set_num_threads`` and OpenCV threads (None = library defaults).
        model: detector weights (None = shipped default).
        data: optional (ir, vis) files/folders of real pairs, resized to each size.
        out: folder for ``bench.json`` and ``bench.md``.
        overrides: ``FIELD=VALUE`` FusionConfig overrides (e.g. ``detector_scale=0.25``).
        compare: ``[LABEL, FIELD=VALUE, ...]`` lists: extra full-pipeline rows with these settings
            on top of ``overrides`` (e.g. the previous default), measured in the same run.
        use_torch: run the default mode with the torch primitives also on the CPU (on CUDA they are used anyway).
        skip_pipeline: only time the detectors.
        skip_detector: only time the pipeline.
        quiet: no table on stdout.
        batches: pairs per call; each gives its own rows (1 = the single-pair path a node takes).

    Returns:
        0 on success (skipped variants are reported, not errors), 2 on a usage error; other
        failures raise.
    """
    import torch

    from ivif_ros.backends import create_backend
    from ivif_ros.backends.choice import DetectorChoice
    from ivif_ros.core.pipeline import FusionConfig, detector_input_size
    from ivif_ros.core.settings import parse_assignments
    from ivif_ros.models import load_model

    try:
        frame_sizes = [parse_size(s) for s in sizes]
        variant_texts = list(variants or (CUDA_VARIANTS if device.startswith("cuda") else CPU_VARIANTS))
        parsed = [parse_variant(v) for v in variant_texts]
        choices = [DetectorChoice(backend=name, device=device, model=model or "", options=options)
                   for name, options in parsed]
        for choice in choices:
            choice.validate()
        config_overrides = parse_assignments(FusionConfig, overrides)
        config = FusionConfig(**config_overrides)
        config.validate()
        configs = [("", config)]
        for label, *assignments in compare:
            extra = FusionConfig(**{**config_overrides, **parse_assignments(FusionConfig, assignments)})
            extra.validate()
            configs.append((f" [{label}]", extra))
        if runs < 1 or warmup < 0:
            raise ValueError("--runs must be >= 1 and --warmup >= 0")
        batches = [int(b) for b in batches]
        if not batches or min(batches) < 1:
            raise ValueError("--batch values must be >= 1")
    except (ValueError, TypeError) as error:
        print(f"ivif-bench: {error}", file=sys.stderr)
        return 2
    if threads is not None:
        import cv2

        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    base_threads = torch.get_num_threads()
    msg_fns = _message_functions()
    report: dict[str, Any] = {
        "machine": machine_info(),
        "device": device,
        "runs": runs,
        "warmup": warmup,
        "inputs": "real pairs " + " ".join(data) if data else "synthetic_pair sequence (core.synthetic)",
        "overrides": config_overrides,
        "config": {k: v for k, v in dataclasses.asdict(config).items()},
        "pipeline": [],
        "detector": [],
        "notes": [msg_fns[2]] if msg_fns[2] else [],
    }
    net, info = load_model(model)
    if not info.trained:
        report["notes"].append(
            f"detector {info.name} is UNTRAINED (no shipped weights): timings are valid, weight maps are not"
        )
    writer = _ReportWriter(Path(out) if out else None)
    writer.write(report)
    for size in frame_sizes:
        label = f"{size[1]}x{size[0]}"
        pairs = _load_pairs(size, data, 8)
        for text, choice in zip(variant_texts, choices, strict=True):
            torch.set_num_threads(base_threads)  # a torch:threads=N variant must not leak into the next
            runs_of_rows = [(batch, suffix, cfg) for batch in batches for suffix, cfg in configs]
            for batch, suffix, row_config in [] if skip_pipeline else runs_of_rows:
                row: dict[str, Any] = {"size": label, "variant": text + suffix, "batch": batch}
                try:
                    pipeline = _make_pipeline(dataclasses.replace(row_config), choice, use_torch)
                    row["describe"] = {k: str(v) for k, v in pipeline.describe().items()}
                    _reset_cuda_peak(device)
                    row["load_before"] = list(os.getloadavg())
                    if batch == 1:
                        row.update(_bench_pipeline(pipeline, pairs, runs, warmup, msg_fns))
                    else:
                        row.update(_bench_batched(pipeline, pairs, batch, runs, warmup))
                    row["load_after"] = list(os.getloadavg())
                    row["peak_cuda_mb"] = _cuda_peak_mb(device)
                except Exception as error:  # a failing variant is a reported row, never the end of the run
                    row["error"] = _error_text(error)
                report["pipeline"].append(row)
                writer.write(report)
            for batch in ([] if skip_detector else batches):
                det_size, _ = detector_input_size(*size, config.detector_scale, net.window)
                row = {"size": label, "variant": text, "input": f"{det_size[1]}x{det_size[0]}", "batch": batch}
                try:
                    backend = create_backend(choice.backend, model=net, device=device, **choice.options)
                    row["describe"] = {k: str(v) for k, v in backend.describe().items()}
                    pair = np.random.default_rng(0).random((batch, 2, *det_size), dtype=np.float32)
                    _reset_cuda_peak(device)
                    row["load_before"] = list(os.getloadavg())
                    row.update(_bench_detector(backend, pair, runs, warmup))
                    row["peak_cuda_mb"] = _cuda_peak_mb(device)
                except Exception as error:
                    row["error"] = _error_text(error)
                report["detector"].append(row)
                writer.write(report)
    report["machine"]["loadavg_end"] = list(os.getloadavg())
    markdown = writer.write(report)
    if not quiet:
        print(markdown)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``ivif-bench`` argument parser."""
    parser = argparse.ArgumentParser(prog="ivif-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="frame sizes WIDTHxHEIGHT")
    parser.add_argument(
        "--backends", nargs="+", default=None, metavar="VARIANT",
        help="backend variants name[:key=value,...]; default: "
        f"{' '.join(CPU_VARIANTS)} on CPU, {' '.join(CUDA_VARIANTS)} on CUDA",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda[:N] or auto (default cpu)")
    parser.add_argument("--runs", type=int, default=30, help="measured runs per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured warm-up runs")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and OpenCV threads (default: library defaults)"
    )
    parser.add_argument("--model", default=None, help="detector weights (default: shipped)")
    parser.add_argument("--data", nargs=2, metavar=("IR", "VIS"), default=None, help="real pairs (files or folders)")
    parser.add_argument("--out", default=None, help="folder for bench.json and bench.md")
    add_set_argument(parser)
    parser.add_argument("--compare", action="append", nargs="+", default=[], metavar="LABEL KEY=VALUE",
                        help="extra pipeline rows: a label and FusionConfig settings, e.g. --compare previous "
                        "fusion_scheme=two_scale detector_mix=0.5 (repeatable)")
    parser.add_argument("--torch-ops", action="store_true",
                        help="run the fusion stages with the torch primitives also on the CPU")
    parser.add_argument("--detector-only", action="store_true", help="time the detectors only")
    parser.add_argument("--pipeline-only", action="store_true", help="time the full pipeline only")
    parser.add_argument("--batch", nargs="+", type=int, default=[1], metavar="B",
                        help="pairs per call, one set of rows each (default 1; e.g. --batch 1 8)")
    parser.add_argument("--quiet", action="store_true", help="no table on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``ivif-bench``."""
    import logging

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return bench_command(
            sizes=args.sizes,
            variants=args.backends,
            device=args.device,
            runs=args.runs,
            warmup=args.warmup,
            threads=args.threads,
            model=args.model,
            data=args.data,
            out=args.out,
            overrides=args.overrides,
            compare=args.compare,
            use_torch=args.torch_ops,
            skip_pipeline=args.detector_only,
            skip_detector=args.pipeline_only,
            batches=args.batch,
            quiet=args.quiet,
        )
    except Exception as error:  # one clear line instead of a traceback; usage errors returned 2 already
        print(f"ivif-bench: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
