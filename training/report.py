"""Tables, rankings and figures for ``ivif-eval`` (Markdown, CSV-ready rows, matplotlib Agg plots).

Pure functions over plain data: per-pair rows are dicts ``{"dataset", "pair", "method", "seconds",
<metric>: value}``; mean tables are ``{method: {metric: mean}}``.

Ranking convention (the one of ``peer-reference.md``): per metric, rows are ranked 1 = best
(higher is better except CE and Nabf), ties share the average rank; a row's mean rank is the
average of its 11 ranks.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import rankdata

from ivif_ros.training.metrics import HIGHER_IS_BETTER, METRIC_NAMES, UNRANKED_NAMES

__all__ = [
    "mean_table",
    "mean_ranks",
    "format_value",
    "markdown_table",
    "goal_check",
    "parse_reference_tables",
    "bar_charts",
    "sample_grid",
    "replace_markdown_section",
]


def mean_table(rows: Iterable[Mapping[str, object]], methods: Sequence[str]) -> tuple[dict[str, dict[str, float]],
                                                                                      dict[str, int]]:
    """Mean of every metric and unranked column (NaN ignored) and of ``seconds`` per method, and the pair counts.

    Returns:
        (``{method: {metric or "seconds": mean}}``, ``{method: number of pairs}``), methods in the
        given order; methods without rows are left out.
    """
    grouped: dict[str, list[Mapping[str, object]]] = {}
    for row in rows:
        grouped.setdefault(str(row["method"]), []).append(row)
    means: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for method in methods:
        method_rows = grouped.get(method)
        if not method_rows:
            continue
        means[method] = {}
        for key in (*METRIC_NAMES, *UNRANKED_NAMES, "seconds"):
            values = np.array([float(row.get(key, math.nan)) for row in method_rows], dtype=np.float64)
            finite = values[np.isfinite(values)]
            means[method][key] = float(finite.mean()) if finite.size else math.nan
        counts[method] = len(method_rows)
    return means, counts


def mean_ranks(means: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean rank over the 11 metrics of each row (1 = best; CE and Nabf lower-better; ties averaged).

    A NaN value ranks last for that metric.
    """
    methods = list(means)
    if not methods:
        return {}
    rank_sums = np.zeros(len(methods))
    for metric in METRIC_NAMES:
        values = np.array([means[method][metric] for method in methods], dtype=np.float64)
        keyed = -values if HIGHER_IS_BETTER[metric] else values.copy()
        keyed[~np.isfinite(keyed)] = np.inf
        rank_sums += rankdata(keyed, method="average")
    return {method: float(total / len(METRIC_NAMES)) for method, total in zip(methods, rank_sums, strict=True)}


def format_value(value: float) -> str:
    """The precision of the published tables: 2 decimals from 10 up, else 4 decimals."""
    if not math.isfinite(value):
        return "nan"
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def _metric_header(metric: str) -> str:
    return metric if HIGHER_IS_BETTER[metric] else f"{metric}↓"


def markdown_table(
    means: Mapping[str, Mapping[str, float]],
    counts: Mapping[str, int] | None = None,
    sort_by_rank: bool = True,
    show_seconds: bool = True,
    mark: Iterable[str] = (),
) -> str:
    """A Markdown table: one row per method, the 11 metrics, mean rank (and unranked columns such as
    target retention when any row has them, pairs, s/pair).

    Args:
        means: ``{method: {metric: value}}``; ``seconds`` is shown when present and wanted.
        counts: pairs per method (column shown when given).
        sort_by_rank: order rows by mean rank (best first) instead of insertion order.
        show_seconds: add the ``s/pair`` column when the rows have ``seconds``.
        mark: methods whose name is set in bold (our rows in a merged table).
    """
    ranks = mean_ranks(means)
    methods = sorted(means, key=lambda name: ranks[name]) if sort_by_rank else list(means)
    bold = set(mark)
    with_seconds = show_seconds and any(math.isfinite(means[m].get("seconds", math.nan)) for m in methods)
    unranked = [name for name in UNRANKED_NAMES if any(math.isfinite(means[m].get(name, math.nan)) for m in methods)]
    header = ["method", *(_metric_header(metric) for metric in METRIC_NAMES), "mean rank", *unranked]
    if counts is not None:
        header.append("pairs")
    if with_seconds:
        header.append("s/pair")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        name = f"**{method}**" if method in bold else method
        cells = [name, *(format_value(means[method][metric]) for metric in METRIC_NAMES), f"{ranks[method]:.2f}"]
        extras = [means[method].get(extra, math.nan) for extra in unranked]
        cells += [f"{value:.2f}" if math.isfinite(value) else "–" for value in extras]
        if counts is not None:
            cells.append(str(counts.get(method, "")))
        if with_seconds:
            seconds = means[method].get("seconds", math.nan)
            cells.append(f"{seconds:.3f}" if math.isfinite(seconds) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def goal_check(means: Mapping[str, Mapping[str, float]], candidate: str, rivals: Iterable[str]) -> str:
    """Markdown lines: on how many metrics ``candidate`` beats each rival (strictly), Qabf/Nabf won.

    The product goal: better than the seed mode and every classic baseline on at least 8 of the 11
    metrics, including Qabf and Nabf.
    """
    lines = [f"| {candidate} vs | metrics won (of 11) | Qabf | Nabf | goal (≥ 8 incl. Qabf, Nabf) |",
             "|---|---|---|---|---|"]
    for rival in rivals:
        if rival == candidate or rival not in means or candidate not in means:
            continue
        won = {}
        for metric in METRIC_NAMES:
            ours, theirs = means[candidate][metric], means[rival][metric]
            won[metric] = ours > theirs if HIGHER_IS_BETTER[metric] else ours < theirs
        count = sum(won.values())
        passed = count >= 8 and won["Qabf"] and won["Nabf"]
        lost = ", ".join(metric for metric, ok in won.items() if not ok) or "none"
        lines.append(
            f"| {rival} | {count} (lost: {lost}) | {'yes' if won['Qabf'] else 'no'} | "
            f"{'yes' if won['Nabf'] else 'no'} | {'met' if passed else 'not met'} |"
        )
    return "\n".join(lines) + "\n"


def parse_reference_tables(text: str) -> dict[str, dict[str, dict[str, float]]]:
    """Parse ``peer-reference.md``-style Markdown: ``## <dataset>`` sections holding a table whose
    header has ``method`` and metric columns (``↓`` marks and a ``mean rank`` column are ignored).

    Returns:
        ``{dataset: {method: {metric: value}}}``; only tables with all 11 metric columns.
    """
    tables: dict[str, dict[str, dict[str, float]]] = {}
    section = None
    columns: list[str] | None = None
    for raw_line in text.splitlines():
        line = raw_line.strip()
        heading = re.match(r"^##\s+(.+?)\s*$", line)
        if heading:
            section, columns = heading.group(1).strip(), None
            continue
        if not line.startswith("|") or section is None:
            columns = None if not line.startswith("|") else columns
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if columns is None:
            names = [cell.replace("↓", "").strip() for cell in cells]
            if names and names[0].lower() == "method" and all(metric in names for metric in METRIC_NAMES):
                columns = names
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(columns, cells, strict=False))
        try:
            values = {metric: float(row[metric]) for metric in METRIC_NAMES}
        except (KeyError, ValueError):
            continue
        tables.setdefault(section, {})[row["method"]] = values
    return tables


def bar_charts(means: Mapping[str, Mapping[str, float]], title: str, path: Path) -> None:
    """One PNG with a bar chart per metric (one bar per method); CE and Nabf marked lower-better."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(means)
    columns = 4
    rows = math.ceil(len(METRIC_NAMES) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")(np.arange(len(methods)) % 10)
    for axis, metric in zip(axes.ravel(), METRIC_NAMES, strict=False):
        values = [means[method][metric] for method in methods]
        axis.bar(range(len(methods)), values, color=colours)
        axis.set_xticks(range(len(methods)))
        axis.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
        axis.set_title(f"{metric} ({'higher' if HIGHER_IS_BETTER[metric] else 'lower'} is better)", fontsize=9)
        axis.tick_params(axis="y", labelsize=8)
    for axis in axes.ravel()[len(METRIC_NAMES) :]:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _tile(image: np.ndarray, size: tuple[int, int], label: str) -> np.ndarray:
    """BGR tile of ``size`` (w, h) with a label bar on top."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    tile = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    bar = np.full((22, size[0], 3), 255, np.uint8)
    cv2.putText(bar, label[:40], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def sample_grid(
    infrared: np.ndarray,
    visible: np.ndarray,
    outputs: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    max_side: int = 320,
) -> np.ndarray:
    """Grid image: row 1 = infrared, visible, then each method's fused image; row 2 = each method's
    weight map (visible share, JET colour map: red = visible, blue = infrared; blank if none).

    Args:
        infrared, visible: the sources (gray or BGR uint8).
        outputs: ``{method: (fused uint8, weights float in [0, 1] or None)}``.
        max_side: longest side of one tile in pixels.

    Returns:
        BGR uint8 image.
    """
    height, width = visible.shape[:2]
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    blank = np.full((size[1], size[0], 3), 255, np.uint8)
    top = [_tile(infrared, size, "infrared"), _tile(visible, size, "visible")]
    bottom = [_tile(blank, size, ""), _tile(blank, size, "")]
    for method, (fused, weights) in outputs.items():
        top.append(_tile(fused, size, method))
        if weights is None:
            bottom.append(_tile(blank, size, f"{method}: no weight map"))
        else:
            weights_u8 = np.clip(np.asarray(weights, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            bottom.append(_tile(cv2.applyColorMap(weights_u8, cv2.COLORMAP_JET), size, f"{method} weights (vis share)"))
    return np.vstack([np.hstack(top), np.hstack(bottom)])


def replace_markdown_section(document: str, heading: str, body: str) -> str:
    """Replace the ``## heading`` section of a Markdown document (up to the next ``## `` heading)
    with ``body`` (which starts with the heading line), or append it when absent."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        prefix = document if document.endswith("\n") or not document else document + "\n"
        return prefix + ("\n" if prefix else "") + body
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + body + ("\n" + tail if tail else "")
