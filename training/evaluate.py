"""``ivif-eval``: score fusion methods with the 11 quality metrics over dataset folders.

One run fuses every pair of every dataset folder with each requested method, scores the result
(:mod:`ivif_ros.training.metrics`, A = infrared, B = visible, grayscale luminance) and writes into
``--out``:

* ``per_pair.csv``: one row per (dataset, pair, method): the 11 metrics and the fusion seconds;
* ``results.md``: per dataset the mean table (mean rank among the rows of this run), the product
  goal check (default vs seed and every classic baseline) and, with ``--reference-table``, a
  merged ranking that places this run's rows among the published rows;
* ``plots/<dataset>_metrics.png``: a bar chart per metric;
* ``grids/<dataset>_<pair>.png``: inputs, fused images and weight maps of the first pairs;
* with ``--sequence DIR``: the pairs of DIR in name order are fused as consecutive video frames
  (the ``default`` row in stream mode, with temporally smoothed normalisation, and once more frame
  by frame as ``default (per frame)``); the flicker table (mean absolute frame-to-frame change of
  the fused luminance against the inputs', :func:`metrics.sequence_flicker`) goes into
  ``results.md`` and a strip of consecutive frames into ``grids/sequence_<name>.png``.

Every per-pair row also carries the thermal target retention (:func:`metrics.target_retention`),
shown beside the 11 metrics and not part of the mean rank.

Methods: ``default`` and ``seed`` (``FusionPipeline`` modes), ``mean``, ``max``, ``lp``, ``gff``
(:mod:`ivif_ros.training.baselines`) and ``--external NAME=DIR`` folders of fused images
(matched by file stem). Dataset folders use any layout of :mod:`ivif_ros.data` (``ir/`` + ``vis/``,
MSRS, LLVIP, RoadScene, TNO-style ``IR{k}.*`` / ``VIS{k}.*`` files, ...).

Sizes: by default every pair is scored at the visible frame's native size (an infrared frame of
another size is resized to it). ``--size N`` reproduces the paper's protocol: both sources are
resized to N×N, every method fuses at that size and the metrics compare the fused image with the
resized sources. External fused images of another size than the sources are scored against
sources resized to the fused size (the paper's "sources resized to the fused size").

The seed mode is slow (minutes per 456×456 pair on a CPU): ``--seed-limit`` caps its pairs per
dataset and ``--seed-max-side`` fuses and scores it on sources downscaled to that longest side;
the table names the row ``seed@<side>px`` so that it is not mistaken for a native-size score.

Example (the committed benchmark)::

    ivif-eval ../shared/data/msrs ../shared/data/roadscene ../shared/data/llvip --out eval_out \\
        --methods default,seed,mean,max,lp,gff --seed-limit 3 --seed-max-side 160 --workers 2 \\
        --reference-table ../shared/peer-reference.md --benchmarks-md BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ivif_ros.backends.choice import DetectorChoice, add_detector_arguments
from ivif_ros.cli.dependencies import optional
from ivif_ros.cli.options import add_set_argument
from ivif_ros.core.config import FusionConfig
from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.settings import parse_assignments
from ivif_ros.data import find_pairs, list_images, natural_key, read_image
from ivif_ros.training import report
from ivif_ros.training.baselines import BASELINES
from ivif_ros.training.metrics import METRIC_NAMES, UNRANKED_NAMES, compute_metrics, sequence_flicker, target_retention

__all__ = ["PairJob", "EvalSettings", "evaluate_pair", "run", "main"]

PIPELINE_MODES = ("default", "seed")
KNOWN_METHODS = (*PIPELINE_MODES, *BASELINES)
DEFAULT_METHODS = ("default", "seed", "mean", "max", "lp", "gff", "liu2017", "hmsd_gf")


@dataclass(frozen=True)
class PairJob:
    """One pair of one dataset, with the methods to run on it."""

    dataset: str
    name: str
    infrared_path: Path
    visible_path: Path
    methods: tuple[str, ...]
    external: tuple[tuple[str, Path], ...] = ()
    keep_images: bool = False


@dataclass(frozen=True)
class EvalSettings:
    """Settings shared by every pair of a run (sent once to each worker)."""

    size: int | None = None
    seed_max_side: int | None = None
    detector: DetectorChoice = field(default_factory=DetectorChoice)
    overrides: tuple[tuple[str, object], ...] = ()


@dataclass
class PairOutcome:
    """Metric rows of one pair, problems met, and (for grid pairs) the images."""

    rows: list[dict[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    images: dict[str, object] | None = None


# ---------------------------------------------------------------------------------------------
# Finding pairs
# ---------------------------------------------------------------------------------------------
_TNO_RE = re.compile(r"^(?P<role>ir|vis)(?P<key>.+)$", re.IGNORECASE)


def _external_index(folder: Path) -> dict[str, Path]:
    indexed = {}
    for path in list_images(folder, recursive=False):
        indexed[path.stem.lower()] = path
        match = _TNO_RE.match(path.stem)
        if match:
            indexed.setdefault(match.group("key").lstrip("_-").lower(), path)
    return indexed


# ---------------------------------------------------------------------------------------------
# Per-pair work (runs in the workers)
# ---------------------------------------------------------------------------------------------
_WORKER_SETTINGS = EvalSettings()
_PIPELINES: dict[str, object] = {}


def _init_worker(settings: EvalSettings, torch_threads: int = 1) -> None:
    """Worker start: remember the settings and keep torch to ``torch_threads`` threads."""
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = settings
    _PIPELINES.clear()
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(torch_threads)
    except ImportError:
        pass


def _pipeline(mode: str):
    if mode not in _PIPELINES:
        from ivif_ros.backends.choice import create_pipeline
        from ivif_ros.core.pipeline import FusionConfig

        settings = _WORKER_SETTINGS
        _PIPELINES[mode] = create_pipeline(FusionConfig(**dict(settings.overrides), mode=mode), settings.detector)
    return _PIPELINES[mode]


def _read(path: Path, role: str) -> np.ndarray:
    image = read_image(path, role)
    if image.dtype != np.uint8:
        # 16-bit or float frames: min–max to 8 bits (metrics and baselines work on 0..255).
        values = image.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        if high <= low:
            image = np.zeros(values.shape, np.uint8)
        else:
            image = np.floor((values - low) * 255.0 / (high - low) + 0.5).astype(np.uint8)
    return image


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def seed_label(seed_max_side: int | None) -> str:
    """Row name of the seed mode in tables (``seed`` or ``seed@<side>px``)."""
    return f"seed@{seed_max_side}px" if seed_max_side else "seed"


def _fuse(method: str, infrared: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
    start = time.perf_counter()
    if method in PIPELINE_MODES:
        result = _pipeline(method)(infrared, visible)
        fused, weights = result.fused, result.weights
    else:
        result = BASELINES[method](infrared, visible)
        fused, weights = result.fused, result.weights
    return fused, weights, time.perf_counter() - start


def evaluate_pair(job: PairJob) -> PairOutcome:
    """Fuse and score one pair with every method of the job (errors become problems, not crashes)."""
    settings = _WORKER_SETTINGS
    outcome = PairOutcome()
    try:
        infrared = _read(job.infrared_path, "ir")
        visible = _read(job.visible_path, "vis")
    except ValueError as error:
        outcome.problems.append(str(error))
        return outcome
    height, width = (settings.size, settings.size) if settings.size else visible.shape[:2]
    visible = _resize(visible, width, height)
    infrared = _resize(infrared, width, height)
    shown: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    base = {"dataset": job.dataset, "pair": job.name}
    for method in job.methods:
        source_ir, source_vis, label = infrared, visible, method
        if method == "seed" and settings.seed_max_side and max(height, width) > settings.seed_max_side:
            scale = settings.seed_max_side / max(height, width)
            small = (max(32, round(width * scale)), max(32, round(height * scale)))
            source_ir, source_vis = _resize(infrared, *small), _resize(visible, *small)
        if method == "seed":
            label = seed_label(settings.seed_max_side)
        try:
            fused, weights, seconds = _fuse(method, source_ir, source_vis)
            scores = compute_metrics(source_ir, source_vis, fused)
            scores["retention"] = target_retention(source_ir, fused)
        except Exception as error:  # noqa: BLE001 - one failing method must not end the run
            outcome.problems.append(f"{job.dataset}/{job.name} {label}: {type(error).__name__}: {error}")
            continue
        outcome.rows.append({**base, "method": label, **scores, "seconds": seconds})
        shown[label] = (fused, weights)
    for name, folder in job.external:
        candidates = [job.name, job.visible_path.stem, job.infrared_path.stem]
        index = _external_index(folder)
        path = next((index[c.lower()] for c in candidates if c.lower() in index), None)
        if path is None:
            outcome.problems.append(f"{job.dataset}/{job.name} {name}: no fused image in {folder}")
            continue
        try:
            fused = _read(path, "vis")
            fused_h, fused_w = fused.shape[:2]
            scores = compute_metrics(_resize(infrared, fused_w, fused_h), _resize(visible, fused_w, fused_h), fused)
            scores["retention"] = target_retention(_resize(infrared, fused_w, fused_h), fused)
        except ValueError as error:
            outcome.problems.append(f"{job.dataset}/{job.name} {name}: {error}")
            continue
        outcome.rows.append({**base, "method": name, **scores, "seconds": math.nan})
        shown[name] = (fused, None)
    if job.keep_images:
        outcome.images = {"infrared": infrared, "visible": visible, "outputs": shown}
    return outcome


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def _parse_external(values: Sequence[str]) -> list[tuple[str, Path]]:
    external = []
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--external expects NAME=DIR, got {value!r}")
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"--external {name}: {folder} is not a folder")
        external.append((name, Path(folder)))
    return external


def _external_for(dataset: str, folder: Path) -> Path:
    """An external folder may hold one sub-folder per dataset; use it when present."""
    candidate = folder / dataset
    return candidate if candidate.is_dir() else folder


def _write_csv(rows: Sequence[dict[str, object]], path: Path) -> None:
    columns = ["dataset", "pair", "method", *METRIC_NAMES, *UNRANKED_NAMES, "seconds"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (f"{row[key]:.6g}" if isinstance(row[key], float) else row[key]) for key in columns})


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``ivif-eval`` command line; returns the exit status."""
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in (*methods, *args.sequence_methods.split(",")) if m.strip() and m.strip() not in KNOWN_METHODS]
    if unknown:
        print(f"ivif-eval: unknown method(s) {unknown}; known: {list(KNOWN_METHODS)}", file=sys.stderr)
        return 2
    try:
        external = _parse_external(args.external)
    except ValueError as error:
        print(f"ivif-eval: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        print(f"ivif-eval: {error}", file=sys.stderr)
        return 1
    try:
        overrides = parse_assignments(FusionConfig, args.overrides)
        overrides.pop("mode", None)  # the methods name the modes
        FusionConfig(**overrides).validate()
        detector = DetectorChoice(backend=args.backend, device=args.device, model=args.model or "",
                                  seed_model=args.seed_model or "")
        detector.validate()
    except FusionInputError as error:
        print(f"ivif-eval: {error}", file=sys.stderr)
        return 2
    settings = EvalSettings(size=args.size, seed_max_side=args.seed_max_side, detector=detector,
                            overrides=tuple(overrides.items()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[PairJob] = []
    problems: list[str] = []
    datasets: list[str] = []
    for folder_name in args.datasets:
        folder = Path(folder_name)
        try:
            pairs, found_problems = find_pairs(folder)
        except FusionInputError as error:
            print(f"ivif-eval: {error}", file=sys.stderr)
            return 1
        problems += found_problems
        dataset = folder.resolve().name
        datasets.append(dataset)
        if args.limit:
            pairs = pairs[: args.limit]
        for index, (name, ir_path, vis_path) in enumerate(pairs):
            seed_allowed = args.seed_limit is None or index < args.seed_limit
            pair_methods = tuple(m for m in methods if m != "seed" or seed_allowed)
            jobs.append(
                PairJob(
                    dataset=dataset,
                    name=name,
                    infrared_path=ir_path,
                    visible_path=vis_path,
                    methods=pair_methods,
                    external=tuple((n, _external_for(dataset, d)) for n, d in external),
                    keep_images=index < args.grid_pairs,
                )
            )
    if not jobs:
        print("ivif-eval: no pairs found", file=sys.stderr)
        return 1
    rows, grids = _execute(jobs, settings, args.workers, problems)
    rows.sort(key=lambda row: (datasets.index(str(row["dataset"])), natural_key(str(row["pair"])), str(row["method"])))
    _write_csv(rows, out / "per_pair.csv")
    labels = [seed_label(args.seed_max_side) if m == "seed" else m for m in methods] + [n for n, _ in external]
    reference = report.parse_reference_tables(Path(args.reference_table).read_text()) if args.reference_table else {}
    section = _results_markdown(rows, datasets, labels, grids, out, reference, args)
    if args.sequence:
        section = section.rstrip("\n") + "\n\n" + sequence_section(
            Path(args.sequence), [m.strip() for m in args.sequence_methods.split(",") if m.strip()],
            args.sequence_limit, out, settings
        )
    (out / "results.md").write_text(section)
    if args.benchmarks_md:
        path = Path(args.benchmarks_md)
        existing = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(report.replace_markdown_section(existing, "## Fusion quality", section))
    if problems:
        (out / "problems.txt").write_text("\n".join(problems) + "\n")
        print(f"ivif-eval: {len(problems)} problem(s), see {out / 'problems.txt'}", file=sys.stderr)
    print(f"ivif-eval: {len(rows)} scores written to {out}")
    return 0


def _execute(
    jobs: Sequence[PairJob], settings: EvalSettings, workers: int, problems: list[str]
) -> tuple[list[dict[str, object]], list[tuple[str, str, np.ndarray]]]:
    from tqdm import tqdm

    rows: list[dict[str, object]] = []
    grids: list[tuple[str, str, np.ndarray]] = []

    def collect(job: PairJob, outcome: PairOutcome) -> None:
        rows.extend(outcome.rows)
        problems.extend(outcome.problems)
        if outcome.images is not None and outcome.images["outputs"]:
            images = outcome.images
            grids.append((job.dataset, job.name, report.sample_grid(images["infrared"], images["visible"],
                                                                    images["outputs"])))

    progress = tqdm(total=len(jobs), desc="ivif-eval", unit="pair", file=sys.stderr)
    if workers <= 1:
        _init_worker(settings, torch_threads=1)
        for job in jobs:
            collect(job, evaluate_pair(job))
            progress.update()
    else:
        # ProcessPoolExecutor (not multiprocessing.Pool): a worker killed mid-pair (e.g. by the OOM
        # killer) raises BrokenProcessPool here instead of leaving the run waiting forever.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(settings, 1)) as pool:
            # Slow seed pairs first so that they do not end up alone at the tail of the run.
            ordered = sorted(range(len(jobs)), key=lambda i: "seed" not in jobs[i].methods)
            pending = {pool.submit(evaluate_pair, jobs[i]): i for i in ordered}
            try:
                for future in as_completed(pending):
                    collect(jobs[pending[future]], future.result())
                    progress.update()
            except BrokenProcessPool:
                for future, index in pending.items():
                    if not future.done() or future.exception() is not None:
                        problems.append(f"{jobs[index].dataset}/{jobs[index].name}: not evaluated, a worker process "
                                        "died (out of memory? try fewer --workers or a smaller --seed-max-side)")
    progress.close()
    return rows, grids


def sequence_section(
    folder: Path, methods: Sequence[str], limit: int, out: Path, settings: EvalSettings, strip_frames: int = 8
) -> str:
    """Fuse the pairs of ``folder`` (name order) as one video with every method; Markdown flicker table.

    ``default`` runs in stream mode (normalisation smoothed across frames) and once more frame by
    frame (``default (per frame)``); baselines are stateless. Writes
    ``out/grids/sequence_<folder name>.png``: infrared, visible, stream-mode default and per-frame
    default rows over ``strip_frames`` consecutive frames.
    """
    from ivif_ros.backends.choice import create_pipeline

    pairs, _problems = find_pairs(folder)
    pairs = pairs[:limit]
    if len(pairs) < 2:
        return f"### Sequence {folder.name}\n\nFewer than two frames in {folder}; no flicker measured.\n"
    frames = [(_read(ir_path, "ir"), _read(vis_path, "vis")) for _name, ir_path, vis_path in pairs]
    outputs: dict[str, list[np.ndarray]] = {}
    for method in methods:
        if method == "seed":
            continue
        if method == "default":
            for label, stream in (("default", True), ("default (per frame)", False)):
                config = FusionConfig(**dict(settings.overrides), mode="default")
                pipeline = create_pipeline(config, settings.detector, stream=stream)
                outputs[label] = [pipeline(ir, vis).fused for ir, vis in frames]
        else:
            outputs[method] = [BASELINES[method](ir, vis).fused for ir, vis in frames]
    infrared = [ir for ir, _vis in frames]
    visible = [vis for _ir, vis in frames]
    lines = [
        f"### Sequence {folder.name} ({len(frames)} consecutive frames, {pairs[0][0]} … {pairs[-1][0]})",
        "",
        "Mean absolute frame-to-frame change of the luminance (grey levels); flicker = fused change ÷ the "
        "larger input change (≤ 1: the fused stream is no busier than its busiest input).",
        "",
        "| method | fused change | infrared change | visible change | flicker |",
        "|---|---|---|---|---|",
    ]
    for label, fused in outputs.items():
        result = sequence_flicker(infrared, visible, fused)
        lines.append(f"| {label} | {result['fused_change']:.2f} | {result['infrared_change']:.2f} | "
                     f"{result['visible_change']:.2f} | {result['flicker']:.2f} |")
    shown = [label for label in ("default", "default (per frame)") if label in outputs]
    rows = [("infrared", infrared), ("visible", visible), *((label, outputs[label]) for label in shown)]
    count = min(strip_frames, len(frames))
    height, width = visible[0].shape[:2]
    size = (max(1, round(width * 200 / max(height, width))), max(1, round(height * 200 / max(height, width))))
    strip = np.vstack([
        np.hstack([report._tile(images[i], size, f"{label} {pairs[i][0]}") for i in range(count)])
        for label, images in rows
    ])
    path = out / "grids" / f"sequence_{folder.name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), strip)
    lines += ["", f"Strip of {count} consecutive frames: `{path}` (not committed: dataset licence).", ""]
    return "\n".join(lines)


def _command_line(args: argparse.Namespace) -> str:
    return "ivif-eval " + " ".join(args.argv_for_report)


def _results_markdown(
    rows: Sequence[dict[str, object]],
    datasets: Sequence[str],
    labels: Sequence[str],
    grids: Sequence[tuple[str, str, np.ndarray]],
    out: Path,
    reference: dict[str, dict[str, dict[str, float]]],
    args: argparse.Namespace,
) -> str:
    size_text = f"all pairs resized to {args.size}×{args.size}" if args.size else "native size (visible frame)"
    lines = [
        "## Fusion quality",
        "",
        f"Regenerate with (from the repository root):\n\n```\n{_command_line(args)}\n```\n",
        f"Scored with `ivif_ros.training.metrics` at {size_text}: grayscale luminance, A = infrared, "
        "B = visible; MI is the real MI(A,F)+MI(B,F) in bits (not the seed evaluation's 2·EN); "
        "↓ = lower is better; mean rank over the 11 metrics among the rows of each table "
        "(1 = best, ties averaged). `s/pair` = fusion seconds per pair on this machine "
        "(metrics excluded; torch 1 thread per worker).",
        "",
    ]
    seed_row = next((label for label in labels if label.startswith("seed")), None)
    if seed_row and args.seed_max_side:
        lines += [
            f"`{seed_row}`: the seed mode fused and scored on sources downscaled to a longest side of "
            f"{args.seed_max_side} px (it is too slow for native size on a CPU); gradient metrics "
            "(EI, SF, DF) of a downscaled image are not comparable with native-size rows.",
            "",
        ]
    for dataset in datasets:
        dataset_rows = [row for row in rows if row["dataset"] == dataset]
        means, counts = report.mean_table(dataset_rows, labels)
        if not means:
            continue
        lines += [f"### {dataset}", "", report.markdown_table(means, counts)]
        rivals = [label for label in labels if label != "default" and label in means]
        if "default" in means and rivals:
            lines += ["Goal check (default vs each other row of this run):", "", report.goal_check(means, "default",
                                                                                                   rivals)]
        if dataset in reference:
            merged = dict(reference[dataset])
            downscaled = seed_row if args.seed_max_side else None
            ours = [label for label in means if label not in merged and label != downscaled]
            merged.update({label: means[label] for label in ours})
            lines += [
                f"Among the published rows of `{Path(args.reference_table).name}` ({dataset}; this run's "
                "native-size rows not already present there in bold; published values are rounded as printed):",
                "",
                report.markdown_table(merged, show_seconds=False, mark=ours),
            ]
        if getattr(args, "plots", True):
            plot = out / "plots" / f"{dataset}_metrics.png"
            report.bar_charts(means, f"{dataset}: mean of {max(counts.values())} pairs", plot)
            link = f"![{dataset} metrics]({plot.as_posix()})" if not plot.is_absolute() else f"Bar charts: `{plot}`."
            lines += [link, ""]
    for dataset, name, grid in grids:
        path = out / "grids" / f"{dataset}_{name.replace('/', '_')}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), grid)
    if grids:
        lines += [f"Sample grids (inputs, fused images, weight maps): `{out / 'grids'}/` (made from the dataset "
                  "images, so they are not committed: the datasets' licences forbid redistribution).", ""]
    return "\n".join(lines).rstrip() + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The ``ivif-eval`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ivif-eval", description="Score fusion methods with 11 quality metrics over dataset folders."
    )
    parser.add_argument("datasets", nargs="+", help="dataset folders (ir/ + vis/, or TNO-style IR{k}/VIS{k} files)")
    parser.add_argument("--out", required=True, help="output folder (CSV, Markdown, plots, grids)")
    parser.add_argument(
        "--methods", default=",".join(DEFAULT_METHODS), help=f"comma list from {','.join(KNOWN_METHODS)}"
    )
    parser.add_argument("--external", action="append", default=[], metavar="NAME=DIR",
                        help="folder of fused images (file stem = pair name; may hold one sub-folder per dataset)")
    parser.add_argument("--size", type=int, default=None, help="resize every pair to SIZE×SIZE (paper: 456)")
    parser.add_argument("--limit", type=int, default=None, help="first N pairs per dataset")
    parser.add_argument("--seed-limit", type=int, default=None, help="first N pairs per dataset for the slow seed mode")
    parser.add_argument("--seed-max-side", type=int, default=None,
                        help="fuse and score the seed mode on sources downscaled to this longest side")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (torch 1 thread each)")
    parser.add_argument("--grid-pairs", type=int, default=2, help="sample grids for the first N pairs per dataset")
    parser.add_argument("--reference-table", default=None,
                        help="peer-reference.md-style Markdown: add a merged mean-rank table per dataset")
    parser.add_argument("--benchmarks-md", default=None,
                        help="also replace the '## Fusion quality' section of this Markdown file")
    parser.add_argument("--sequence", default=None, metavar="DIR",
                        help="dataset folder whose pairs (name order) are consecutive video frames: "
                        "flicker table + strip")
    parser.add_argument("--sequence-limit", type=int, default=30, help="first N frames of --sequence")
    parser.add_argument("--sequence-methods", default="default,mean,max,lp",
                        help="methods fused over --sequence (default also frame by frame; seed is never run there)")
    add_detector_arguments(parser, "detector weights for the default mode (default: shipped)")
    parser.add_argument("--seed-model", default=None, help="detector weights for the seed mode (default: shipped)")
    add_set_argument(parser)
    parser.add_argument("--protocol", choices=("product", "paper"), default="product",
                        help="paper: the research script's protocol (456x456 gray, enhanced visible vs original "
                             "infrared, their blending and SSR; training/paper_protocol.py)")
    parser.add_argument("--seed-dense", choices=("exact", "shared"), default="exact",
                        help="paper protocol: seed dense pass (shared = layers before fc once per image)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``ivif-eval``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv_for_report = argv
    args.plots = optional("ivif-eval", "bar charts (plots/*.png)", ("matplotlib",))
    for name in ("size", "limit", "seed_limit", "seed_max_side"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.protocol == "paper":
        from ivif_ros.training.paper_protocol import run_paper

        return run_paper(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
