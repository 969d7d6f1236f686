"""Ablation of the default fusion's levers: metric deltas, mean rank among the peers, and cost.

Each lever is one ``FusionConfig`` override of the product default. Every variant runs through
``FusionPipeline`` on the same pairs; the table gives its mean rank when added as a row to the
reference tables of ``peer-reference.md`` (same 11 metrics), the change of each metric relative to
the default, and the median pipeline milliseconds per pair.

Usage::

    python3 -m ivif_ros.training.ablation --data ../shared/data --sets msrs,roadscene \\
        --reference-table ../shared/peer-reference.md --out docs/eval/ablation.md --benchmarks-md BENCHMARKS.md
"""
from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ivif_ros.core.errors import FusionInputError
from ivif_ros.data import data_root, find_pairs, read_image

from .metrics import HIGHER_IS_BETTER, METRIC_NAMES, compute_metrics, target_retention
from .report import mean_ranks, parse_reference_tables, replace_markdown_section

__all__ = ["LEVERS", "run_ablation", "main"]

#: lever name -> FusionConfig overrides relative to the product default.
LEVERS: dict[str, dict[str, object]] = {
    "default": {},
    "detector flattened to ~0.5 (weight_temperature=100)": {"weight_temperature": 100.0},
    "detector replaced by local detail energy (detector_mix=0)": {"detector_mix": 0.0},
    "no detector evidence in the band selection (selection_bias=0)": {"selection_bias": 0.0},
    "no detector evidence in the base selection (base_bias=0)": {"base_bias": 0.0},
    "previous pyramid default (hard selection, no detector evidence, base_complement=0.3, detail_gain=1)": {
        "selection_sharpness": 0.0, "selection_bias": 0.0, "base_bias": 0.0, "base_complement": 0.3,
        "detail_gain": 1.0},
    "two-scale split (fusion_scheme=two_scale, detector_mix=0.5, base_complement=0.3, detail_gain=1)": {
        "fusion_scheme": "two_scale", "detector_mix": 0.5, "base_complement": 0.3, "detail_gain": 1.0},
    "Liu's 3x3 windows (match_radius=1)": {"match_radius": 1},
    "averaging only where bands match closely (match_threshold=0.9)": {"match_threshold": 0.9},
    "averaging almost everywhere (match_threshold=0)": {"match_threshold": 0.0},
    "hard selection (selection_sharpness=0)": {"selection_sharpness": 0.0},
    "3 pyramid levels": {"pyramid_levels": 3},
    "5 pyramid levels": {"pyramid_levels": 5},
    "no final stretch (output_stretch=0)": {"output_stretch": 0.0},
    "no darker-base complement (base_complement=0)": {"base_complement": 0.0},
    "hard brightness selection (base_temperature=0.5)": {"base_temperature": 0.5},
    "no detail gain (detail_gain=1)": {"detail_gain": 1.0},
    "detector at quarter resolution (detector_scale=0.25)": {"detector_scale": 0.25},
}

_PIPELINE = None


def _init_worker(overrides: dict[str, object]) -> None:
    global _PIPELINE
    import torch

    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core import FusionConfig

    torch.set_num_threads(1)
    _PIPELINE = create_pipeline(FusionConfig(**overrides))


def _score_pair(paths: tuple[Path, Path]) -> tuple[dict[str, float], float]:
    infrared, visible = read_image(paths[0], "ir"), read_image(paths[1], "vis")
    result = _PIPELINE(infrared, visible)
    scores = compute_metrics(infrared, visible, result.fused)
    scores["retention"] = target_retention(infrared, result.fused)
    return scores, sum(result.timings.values())


def _dataset_pairs(root: Path, name: str, step: int) -> list[tuple[Path, Path]]:
    pairs, _ = find_pairs(root / name)
    return [(pair.ir, pair.vis) for pair in pairs[::step]]


def run_ablation(
    data: Path, sets: Sequence[str], levers: dict[str, dict[str, object]], step: dict[str, int], workers: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean metrics and median ms of every lever on every set: ``{set: {lever: {metric|"ms": value}}}``."""
    from tqdm import tqdm

    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in sets}
    progress = tqdm(total=len(levers) * len(sets), desc="ablation", unit="run")
    for lever, overrides in levers.items():
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(overrides,)) as pool:
            for name in sets:
                outcomes = list(pool.map(_score_pair, _dataset_pairs(data, name, step.get(name, 1)), chunksize=2))
                means = {m: float(np.nanmean([o[0][m] for o in outcomes])) for m in (*METRIC_NAMES, "retention")}
                means["ms"] = statistics.median(o[1] for o in outcomes)
                means["pairs"] = len(outcomes)
                results[name][lever] = means
                progress.update()
    progress.close()
    return results


def _markdown(results, reference) -> str:
    lines = []
    for name, rows in results.items():
        default = rows["default"]
        peers = reference.get(name, {})
        lines += [f"### {name} ({int(default['pairs'])} pairs)", "",
                  "| lever | mean rank | "
                  + " | ".join(f"Δ{m}{'↓' if not HIGHER_IS_BETTER[m] else ''}" for m in METRIC_NAMES)
                  + " | retention | ms/pair |", "|---" * (len(METRIC_NAMES) + 4) + "|"]
        for lever, means in rows.items():
            rank = mean_ranks({**peers, "candidate": means})["candidate"] if peers else float("nan")
            if lever == "default":
                deltas = [f"{means[m]:.4g}" for m in METRIC_NAMES]
            else:
                deltas = [f"{100.0 * (means[m] - default[m]) / max(abs(default[m]), 1e-12):+.1f}%"
                          for m in METRIC_NAMES]
            lines.append(f"| {lever} | {rank:.2f} | " + " | ".join(deltas)
                         + f" | {means['retention']:.2f} | {means['ms']:.1f} |")
        if peers:
            best = min(mean_ranks({**peers, "candidate": rows["default"]}).items(),
                       key=lambda kv: kv[1] if kv[0] != "candidate" else 99)
            lines.append(f"\nBest peer row with the default added: {best[0]} at {best[1]:.2f}. "
                         "The default row shows absolute values; the others show % change from it.")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ablation and write a Markdown table."""
    parser = argparse.ArgumentParser(prog="ivif-ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="dataset root holding the sets (default: $IVIF_DATA, ../shared/data)")
    parser.add_argument("--sets", default="msrs,roadscene",
                        help="comma-separated sets (tuning sets only: msrs,roadscene)")
    parser.add_argument("--roadscene-step", type=int, default=5,
                        help="use every N-th roadscene pair (221 pairs in all)")
    parser.add_argument("--reference-table", type=Path, help="peer-reference.md to rank against")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="Markdown output file")
    parser.add_argument("--benchmarks-md", type=Path, help="also replace the '## Ablation' section of this file")
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    try:
        data = data_root(args.data)
    except FusionInputError as error:
        print(f"ivif-ablation: {error}", file=sys.stderr)
        return 1
    missing = [s for s in sets if data is None or not (data / s).is_dir()]
    if missing:
        print(f"ivif-ablation: no dataset {missing} under {data} (skip: data not present)", file=sys.stderr)
        return 1
    reference = parse_reference_tables(args.reference_table.read_text()) if args.reference_table else {}
    results = run_ablation(data, sets, LEVERS, {"roadscene": args.roadscene_step}, args.workers)
    command = "python3 -m ivif_ros.training.ablation " + " ".join(argv if argv is not None else sys.argv[1:])
    body = (f"## Ablation\n\nRegenerate with `{command}`. Tuning sets only (msrs, roadscene); llvip was never "
            "used to choose parameters.\n\n" + _markdown(results, reference))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(body)
    if args.benchmarks_md:
        document = args.benchmarks_md.read_text() if args.benchmarks_md.exists() else "# Benchmarks\n"
        args.benchmarks_md.write_text(replace_markdown_section(document, "## Ablation", body))
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
