"""ivif-eval --protocol paper on a tiny synthetic dataset (small --size keeps the seed pass cheap)."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.models import create_model, save_model
from ivif_ros.training import evaluate
from ivif_ros.training.paper_protocol import PAPER_COLUMNS, SECTION, paper_table, read_gray_456


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paperset") / "tiny"
    for sub in ("ir", "vis"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        smooth = cv2.GaussianBlur(rng.uniform(0, 255, (60, 80)), (0, 0), 2.0)
        cv2.imwrite(str(root / "ir" / f"{name}.png"), np.clip(smooth * 1.3 - 30, 0, 255).astype(np.uint8))
        vis = np.dstack([np.clip(255 - smooth + s, 0, 255) for s in (-10, 0, 15)]).astype(np.uint8)
        cv2.imwrite(str(root / "vis" / f"{name}.png"), vis)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("seed"), tmp_path_factory.mktemp("w") / "seed_random.safetensors", "seed")


def test_read_gray_resizes_to_the_protocol_size(dataset):
    gray = read_gray_456(dataset / "vis" / "a.png")
    assert gray.shape == (456, 456) and gray.dtype == np.uint8


def test_paper_protocol_end_to_end(dataset, weights, tmp_path):
    bench = tmp_path / "BENCH.md"
    bench.write_text("# Benchmarks\n\n## Seed mode (paper protocol)\n\nold seed rows\n\n## Speed\n\nkept\n")
    code = evaluate.main([str(dataset), "--out", str(tmp_path / "out"), "--protocol", "paper", "--size", "64",
                          "--methods", "seed,mean", "--seed-limit", "2", "--seed-model", str(weights),
                          "--benchmarks-md", str(bench)])
    assert code == 0
    with (tmp_path / "out" / "per_pair.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["pair"], r["method"]) for r in rows] == [("a", "seed"), ("a", "mean"), ("b", "seed"), ("b", "mean")]
    assert all(float(r["detect_s"]) >= 0 for r in rows if r["method"] == "seed")
    text = bench.read_text()
    assert "old seed rows" not in text and "## Speed\n\nkept" in text and text.count(SECTION) == 1
    header = next(line for line in text.splitlines() if line.startswith("| Method | EI"))
    assert header.split(" | ")[1:] == ["EI", "CE↓", "SF", "EN", "Qabf", "SCD", "Nabf↓", "MI", "SD", "DF", "VIFF |"]
    assert "### tiny (2 pairs)" in text


def test_paper_table_one_row_per_method():
    means = {m: {c: float(i) for i, c in enumerate(PAPER_COLUMNS)} for m in ("seed", "mean")}
    lines = paper_table(means).strip().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| seed | 0.0000 | 1.0000")
