"""End-to-end tests of ivif-eval on tiny synthetic dataset folders written in tmp_path."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.training import evaluate, report
from ivif_ros.training.metrics import METRIC_NAMES


def _pair(seed: int, size: tuple[int, int] = (48, 64)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.uniform(0, 255, size), (0, 0), 2.0)
    infrared = np.clip(smooth * 1.3 - 30, 0, 255).astype(np.uint8)
    visible = np.dstack([np.clip(255 - smooth + shift, 0, 255) for shift in (-10, 0, 15)]).astype(np.uint8)
    return infrared, visible


def _write_standard(root: Path, names: list[str]) -> Path:
    for sub in ("ir", "vis"):
        (root / sub).mkdir(parents=True)
    for index, name in enumerate(names):
        infrared, visible = _pair(index)
        cv2.imwrite(str(root / "ir" / f"{name}.png"), infrared)
        cv2.imwrite(str(root / "vis" / f"{name}.png"), visible)
    return root


def _write_tno(root: Path, keys: list[str]) -> Path:
    root.mkdir(parents=True)
    for index, key in enumerate(keys):
        infrared, visible = _pair(10 + index)
        cv2.imwrite(str(root / f"IR{key}.png"), infrared)
        cv2.imwrite(str(root / f"VIS{key}.png"), cv2.cvtColor(visible, cv2.COLOR_BGR2GRAY))
    return root


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_end_to_end_baselines_external_reference(tmp_path) -> None:
    standard = _write_standard(tmp_path / "synth", ["p1", "p2", "p3"])
    tno = _write_tno(tmp_path / "tno", ["1", "2"])
    external = tmp_path / "mine"
    external.mkdir()
    for name in ("p1", "p2"):  # p3 is missing on purpose
        infrared = cv2.imread(str(standard / "ir" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(external / f"{name}.png"), cv2.resize(infrared, (32, 24)))  # another size
    reference = tmp_path / "peer.md"
    names = (m if m not in ("CE", "Nabf") else m + "↓" for m in METRIC_NAMES)
    header = "| method | " + " | ".join(names) + " | mean rank |"
    reference.write_text(
        "# peers\n\n## synth\n" + header + "\n|" + "---|" * 13 + "\n| Peer | " + " | ".join(["1.0"] * 11) + " | 1 |\n"
    )
    benchmarks = tmp_path / "BENCH.md"
    benchmarks.write_text("# Benchmarks\n\n## Fusion quality\nSTALE-TABLE\n\n## Speed\nkept\n")
    out = tmp_path / "out"
    status = evaluate.main([
        str(standard), str(tno), "--out", str(out), "--methods", "mean,max,lp,gff",
        "--external", f"mine={external}", "--reference-table", str(reference), "--benchmarks-md", str(benchmarks),
        "--grid-pairs", "1",
    ])
    assert status == 0
    rows = _read_csv(out / "per_pair.csv")
    assert {(r["dataset"], r["method"]) for r in rows} >= {("synth", "gff"), ("tno", "lp"), ("synth", "mine")}
    assert len([r for r in rows if r["method"] == "mine"]) == 2
    assert len([r for r in rows if r["dataset"] == "tno"]) == 2 * 4
    finite = [r for r in rows if r["method"] != "mine"]
    assert all(np.isfinite(float(r[m])) for r in finite for m in METRIC_NAMES)
    # The 32×24 external images are below VIFF's 41-px minimum: NaN, and every other metric is scored.
    assert all(r["VIFF"] == "nan" and np.isfinite(float(r["Qabf"])) for r in rows if r["method"] == "mine")
    assert "p3 mine: no fused image" in (out / "problems.txt").read_text()
    results = (out / "results.md").read_text()
    assert results.startswith("## Fusion quality") and "### synth" in results and "### tno" in results
    assert "| **mine** |" in results and "| Peer |" in results
    assert (out / "plots" / "synth_metrics.png").stat().st_size > 0
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["synth_p1.png", "tno_1.png"]
    bench = benchmarks.read_text()
    assert "STALE-TABLE" not in bench and "## Speed\nkept" in bench and "### synth" in bench


def test_pipeline_modes_size_and_workers(tmp_path) -> None:
    standard = _write_standard(tmp_path / "synth", ["p1", "p2"])
    out = tmp_path / "out"
    status = evaluate.main([
        str(standard), "--out", str(out), "--methods", "default,seed,mean", "--size", "48",
        "--seed-limit", "1", "--seed-max-side", "44", "--workers", "2", "--grid-pairs", "1",
    ])
    assert status == 0
    rows = _read_csv(out / "per_pair.csv")
    methods = [r["method"] for r in rows]
    assert methods.count("default") == 2 and methods.count("seed@44px") == 1 and methods.count("mean") == 2
    assert "Goal check" in (out / "results.md").read_text()
    grid = cv2.imread(str(out / "grids" / "synth_p1.png"))
    assert grid is not None and grid.shape[1] > grid.shape[0]


def test_retention_column_and_sequence_flicker(tmp_path) -> None:
    from ivif_ros.core.synthetic import synthetic_sequence

    folder = tmp_path / "clip"
    (folder / "ir").mkdir(parents=True)
    (folder / "vis").mkdir()
    for index, (ir, vis) in enumerate(synthetic_sequence(5, 64, 80, seed=2)):
        ir = np.clip(ir.astype(np.float64) * (1.0 + 0.05 * (index % 2)), 0, 255).astype(np.uint8)  # a gain flicker
        cv2.imwrite(str(folder / "ir" / f"f{index:03d}.png"), ir)
        cv2.imwrite(str(folder / "vis" / f"f{index:03d}.png"), vis)
    out = tmp_path / "out"
    status = evaluate.main([str(folder), "--out", str(out), "--methods", "default,mean", "--sequence", str(folder),
                            "--sequence-limit", "4", "--grid-pairs", "0"])
    assert status == 0
    rows = _read_csv(out / "per_pair.csv")
    assert all(0.0 < float(r["retention"]) < 2.0 for r in rows)
    results = (out / "results.md").read_text()
    assert "| mean rank | retention |" in results
    assert "### Sequence clip (4 consecutive frames, f000 … f003)" in results
    flicker = results[results.index("### Sequence"):]
    table = {line.split(" | ")[0].strip("| "): line for line in flicker.splitlines() if line.startswith("| default")}
    assert set(table) == {"default", "default (per frame)"}
    strip = cv2.imread(str(out / "grids" / "sequence_clip.png"))
    assert strip is not None and strip.shape[1] > strip.shape[0]


def test_bad_arguments(tmp_path) -> None:
    standard = _write_standard(tmp_path / "synth", ["p1"])
    assert evaluate.main([str(standard), "--out", str(tmp_path / "o"), "--methods", "mean,wavelet"]) == 2
    assert evaluate.main([str(standard), "--out", str(tmp_path / "o"), "--external", "nodir"]) == 2
    assert evaluate.main([str(standard), "--out", str(tmp_path / "o"), "--external", f"x={tmp_path / 'nodir'}"]) == 1
    assert evaluate.main([str(tmp_path / "no_set"), "--out", str(tmp_path / "o")]) == 1
    assert evaluate.main([str(standard), "--out", str(tmp_path / "o"), "--set", "no_such_setting=1"]) == 2
    assert evaluate.main([str(standard), "--out", str(tmp_path / "o"), "--set", "smoothing_eps=0"]) == 2
    with pytest.raises(SystemExit):
        evaluate.main([str(standard), "--out", str(tmp_path / "o"), "--size", "0"])


class TestReport:
    def test_mean_ranks_ties_and_direction(self) -> None:
        good = {m: (0.0 if m in ("CE", "Nabf") else 2.0) for m in METRIC_NAMES}
        bad = {m: (1.0 if m in ("CE", "Nabf") else 1.0) for m in METRIC_NAMES}
        ranks = report.mean_ranks({"good": good, "bad": bad, "twin": dict(good)})
        assert ranks == {"good": 1.5, "twin": 1.5, "bad": 3.0}

    def test_parse_peer_reference_layout(self) -> None:
        header = "## msrs\n| method | " + " | ".join(METRIC_NAMES) + " |\n|---|\n"
        text = header + "| X | " + " | ".join(["2"] * 11) + " |\n\n26 pairs.\n"
        assert report.parse_reference_tables(text) == {"msrs": {"X": {m: 2.0 for m in METRIC_NAMES}}}

    def test_goal_check(self) -> None:
        ours = {m: (0.0 if m in ("CE", "Nabf") else 2.0) for m in METRIC_NAMES}
        theirs = {m: 1.0 for m in METRIC_NAMES}
        text = report.goal_check({"default": ours, "gff": theirs}, "default", ["gff"])
        assert "| gff | 11 (lost: none) | yes | yes | met |" in text
