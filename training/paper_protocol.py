"""``ivif-eval --protocol paper``: the research script's evaluation protocol (SEED-ALGORITHM §4).

Per pair: both sources read as 8-bit gray (Octave ``rgb2gray`` weights); the visible image enhanced
(§3) and the infrared min–max normalised at their own size; every image then resized to 456×456
(``cv2.resize``, bilinear, as ``Model_Test.py``; ``--size`` changes it); the seed detector scores
32×32 windows at stride 8 on the ENHANCED visible against the ORIGINAL infrared; decision,
distance-transform blending of the two enhanced images, min–max and their Single-Scale Retinex
(:mod:`ivif_ros.core.seed_mode`); the 11 metrics of the gray fused image against the
456×456 gray sources. Other methods (``--methods``) fuse the same 456×456 gray sources.

Writes ``per_pair.csv`` and ``results.md`` (a table in the paper's format: one row per method, the
11 metric columns in the paper's order, then a timing table) into ``--out``, and with
``--benchmarks-md`` replaces that file's ``## Seed mode (paper protocol)`` section.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ivif_ros.training import report
from ivif_ros.training.metrics import HIGHER_IS_BETTER, METRIC_NAMES, compute_metrics, to_gray_u8

__all__ = ["PAPER_SIZE", "PaperSeed", "SECTION", "run_paper"]

PAPER_SIZE = 456
SECTION = "## Seed mode (paper protocol)"
#: Column order of the paper's tables.
PAPER_COLUMNS = ("EI", "CE", "SF", "EN", "Qabf", "SCD", "Nabf", "MI", "SD", "DF", "VIFF")


def read_gray_456(path: Path, size: int | None = PAPER_SIZE) -> np.ndarray:
    """8-bit gray (``rgb2gray`` weights; 16-bit min–max to 8 bits) resized to ``size``×``size`` (bilinear;
    ``None`` keeps the native size).

    Raises:
        ValueError: unreadable file.
    """
    from ivif_ros.core.errors import FusionInputError
    from ivif_ros.data import read_image

    try:
        image = read_image(path, "vis")
    except FusionInputError as error:
        raise ValueError(str(error)) from error
    if image.dtype != np.uint8:
        values = image.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        image = np.zeros(values.shape, np.uint8) if high <= low else np.floor(
            (values - low) * 255.0 / (high - low) + 0.5).astype(np.uint8)
    gray = to_gray_u8(image)
    return gray if size is None else cv2.resize(gray, (size, size))


class PaperSeed:
    """The seed method at the paper's protocol on one 456×456 gray pair.

    Args:
        weights: seed detector weights (``None``: the shipped ones).
        dense: ``"exact"`` (every window through the network) or ``"shared"`` (see ``SeedNet``).
        stride: window stride (paper: 8 below 500 px).
    """

    def __init__(self, weights: str | None = None, dense: str = "exact", stride: int = 8) -> None:
        from ivif_ros.models import load_model

        self.net, self.info = load_model(weights or "seed", stride=stride, votes=True, dense=dense)

    def __call__(self, infrared: np.ndarray, visible: np.ndarray,
                 size: int = PAPER_SIZE) -> tuple[np.ndarray, dict[str, float]]:
        """Fuse a NATIVE-size gray pair at ``size``×``size``; returns the gray uint8 fused image and seconds
        per stage (enhance, detect, blend). As the authors: both images are enhanced at their own size
        (their ``Main_enhan.m``), then every image is resized to ``size``×``size``; detection runs on the
        enhanced visible vs the original infrared, blending on the two enhanced images."""
        import torch

        from ivif_ros.core import enhance, seed_mode

        seconds: dict[str, float] = {}
        start = time.perf_counter()
        square = (size, size)
        vis_enh = np.floor(cv2.resize(enhance.enhance_luminance(visible.astype(np.float32)), square) + 0.5)
        ir_enh = np.floor(cv2.resize(enhance.minmax_to_255(infrared), square) + 0.5)
        ir_original = cv2.resize(infrared, square).astype(np.float32)
        seconds["enhance"] = time.perf_counter() - start
        start = time.perf_counter()
        pair = torch.from_numpy(np.stack([vis_enh, ir_original])[None].astype(np.float32) / 255.0)
        with torch.no_grad():
            votes = self.net(pair)[0, 0].numpy()
        seconds["detect"] = time.perf_counter() - start
        start = time.perf_counter()
        fused, _ = seed_mode.fuse(vis_enh, ir_enh, votes, self.net.window, self.net.stride)
        seconds["blend"] = time.perf_counter() - start
        return fused.astype(np.uint8), seconds


def _other_method(name: str, weights: str | None):
    if name == "default":
        from ivif_ros.backends.choice import DetectorChoice, create_pipeline
        from ivif_ros.core.config import FusionConfig

        pipeline = create_pipeline(FusionConfig(mode="default"), DetectorChoice(backend="torch", device="cpu",
                                                                              model=weights or ""))
        return lambda ir, vis: pipeline(ir, vis).fused
    from ivif_ros.training.baselines import BASELINES

    if name not in BASELINES:
        raise ValueError(f"unknown method {name!r}; known: seed, default, {', '.join(BASELINES)}")
    return lambda ir, vis: BASELINES[name](ir, vis).fused


def paper_table(means: dict[str, dict[str, float]]) -> str:
    """Markdown table in the paper's format: Method, then EI, CE, SF, EN, Qabf, SCD, Nabf, MI, SD, DF, VIFF."""
    columns = [c for c in PAPER_COLUMNS if c in METRIC_NAMES]
    header = ["Method", *(c if HIGHER_IS_BETTER[c] else f"{c}↓" for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, values in means.items():
        lines.append("| " + " | ".join([method, *(report.format_value(values[c]) for c in columns)]) + " |")
    return "\n".join(lines) + "\n"


def run_paper(args: argparse.Namespace) -> int:
    """Execute ``ivif-eval --protocol paper`` (parsed by ``evaluate.build_parser``); returns the exit status."""
    import torch

    from ivif_ros.core.errors import FusionInputError
    from ivif_ros.data import find_pairs

    torch.set_num_threads(1)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    limit = args.seed_limit or args.limit
    size = args.size or PAPER_SIZE
    try:
        runners = {m: _other_method(m, args.model) for m in methods if m != "seed"}
        seed = PaperSeed(args.seed_model, dense=args.seed_dense) if "seed" in methods else None
    except (ValueError, OSError) as error:
        print(f"ivif-eval: {error}", file=sys.stderr)
        return 2
    rows: list[dict[str, object]] = []
    problems: list[str] = []
    datasets: list[str] = []
    for folder in map(Path, args.datasets):
        try:
            pairs, found = find_pairs(folder)
        except FusionInputError as error:
            print(f"ivif-eval: {error}", file=sys.stderr)
            return 1
        problems += found
        datasets.append(folder.resolve().name)
        for name, ir_path, vis_path in pairs[:limit]:
            try:
                native_ir, native_vis = read_gray_456(ir_path, None), read_gray_456(vis_path, None)
                infrared, visible = cv2.resize(native_ir, (size, size)), cv2.resize(native_vis, (size, size))
            except ValueError as error:
                problems.append(str(error))
                continue
            for method in methods:
                start = time.perf_counter()
                stages: dict[str, float] = {}
                if method == "seed":
                    fused, stages = seed(native_ir, native_vis, size)
                else:
                    fused = runners[method](infrared, visible)
                seconds = time.perf_counter() - start
                scores = compute_metrics(infrared, visible, to_gray_u8(fused))
                rows.append({"dataset": datasets[-1], "pair": name, "method": method, **scores, "seconds": seconds,
                             **{f"{k}_s": v for k, v in stages.items()}})
                print(f"{datasets[-1]}/{name} {method}: {seconds:.1f} s", file=sys.stderr, flush=True)
    if not rows:
        print("ivif-eval: no pairs scored", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with (out / "per_pair.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    section = _section(rows, datasets, methods, seed, args, size)
    (out / "results.md").write_text(section)
    if args.benchmarks_md:
        path = Path(args.benchmarks_md)
        existing = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(report.replace_markdown_section(existing, SECTION, section))
    if problems:
        (out / "problems.txt").write_text("\n".join(problems) + "\n")
    print(f"ivif-eval: {len(rows)} scores written to {out}")
    return 0


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _section(rows: list[dict[str, object]], datasets: list[str], methods: list[str], seed: PaperSeed | None,
             args: argparse.Namespace, size: int) -> str:
    command = "ivif-eval " + " ".join(args.argv_for_report)
    lines = [SECTION, "", f"Regenerate with:\n\n```\n{command}\n```\n",
             f"Paper protocol: sources gray (rgb2gray weights), resized to {size}×{size} (`seed` enhances at native "
             "size first, as the authors); `seed` = "
             "detection on the enhanced visible vs the original infrared (window 32, stride 8, the authors' "
             f"vote and tie rule), distance-transform blending, min–max, their SSR (sigma 300); dense pass "
             f"`{args.seed_dense}`; metrics against the {size}×{size} gray sources (MI = the real "
             "MI(A,F)+MI(B,F), not 2·EN). One thread; seconds on this shared machine.", ""]
    if seed is not None:
        digest = seed.info.sha256[:12] if seed.info.sha256 else "untrained"
        lines += [f"Seed weights: `{seed.info.name}` ({digest}).", ""]
    for dataset in datasets:
        subset = [r for r in rows if r["dataset"] == dataset]
        means = {m: {c: _mean([float(r[c]) for r in subset if r["method"] == m]) for c in METRIC_NAMES}
                 for m in methods if any(r["method"] == m for r in subset)}
        pairs = len({r["pair"] for r in subset})
        lines += [f"### {dataset} ({pairs} pairs)", "", paper_table(means)]
        timing = ["| Method | s/pair | enhance s | detect s | blend+SSR s |", "|---|---|---|---|---|"]
        for m in means:
            sel = [r for r in subset if r["method"] == m]
            cell = [f"{_mean([float(r.get(k, math.nan)) for r in sel]):.2f}" if m == "seed" or k == "seconds" else ""
                    for k in ("seconds", "enhance_s", "detect_s", "blend_s")]
            timing.append("| " + " | ".join([m, *cell]) + " |")
        lines += ["\n".join(timing), ""]
    return "\n".join(lines).rstrip() + "\n"
