"""ivif-bench: argument parsing, report structure (JSON + Markdown), skipped variants, errors."""
import json

import pytest

from ivif_ros.cli import bench
from ivif_ros.cli.bench import main, parse_size, parse_variant, summarize


def test_parse_size():
    assert parse_size("640x512") == (512, 640)
    assert parse_size("1280X1024") == (1024, 1280)
    for bad in ("640", "axb", "16x16"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_parse_variant():
    assert parse_variant("onnxruntime") == ("onnxruntime", {})
    assert parse_variant("torch:fp16=1,cuda_graphs=0") == ("torch", {"fp16": True, "cuda_graphs": False})
    assert parse_variant("onnxruntime:intra_op_threads=1") == ("onnxruntime", {"intra_op_threads": 1})
    with pytest.raises(ValueError):
        parse_variant("torch:fp16")


def test_summarize():
    stats = summarize([float(v) for v in range(1, 101)])
    assert stats["median"] == pytest.approx(50.5)
    assert stats["p95"] == pytest.approx(95.05)
    assert stats["min"] == 1.0 and stats["max"] == 100.0


def test_machine_info_has_cpu_and_load():
    info = bench.machine_info()
    assert info["cpu"] and info["logical_cores"] >= 1 and len(info["loadavg_start"]) == 3


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = main([
        "--sizes", "96x64", "--backends", "torch", "tensorrt", "--runs", "2", "--warmup", "1",
        "--set", "detector_scale=1.0", "--out", str(out), "--quiet",
    ])
    assert code == 0
    return out


def test_json_report(report_dir):
    report = json.loads((report_dir / "bench.json").read_text())
    assert report["machine"]["cpu"] and report["runs"] == 2 and report["overrides"] == {"detector_scale": 1.0}
    torch_rows = [r for r in report["pipeline"] if r["variant"] == "torch"]
    assert len(torch_rows) == 1
    row = torch_rows[0]
    for stage in ("prepare", "enhance", "detect", "weights", "fuse", "total"):
        assert row["stages"][stage]["median"] >= 0.0
        assert row["stages"][stage]["p95"] >= row["stages"][stage]["median"] - 1e-9
    assert row["pairs_per_s"] > 0 and row["peak_rss_mb"] > 0 and len(row["load_before"]) == 3
    parts = sum(row["stages"][s]["median"] for s in ("prepare", "enhance", "detect", "weights", "fuse"))
    assert parts <= row["stages"]["total"]["max"] * 1.5  # stages are parts of the measured total
    detector = [r for r in report["detector"] if r["variant"] == "torch"][0]
    assert detector["input"] == "96x64" and detector["describe"]["backend"] == "torch"
    assert detector["ms"]["median"] > 0


def test_unavailable_backend_is_reported_not_fatal(report_dir):
    from ivif_ros.backends.tensorrt_backend import tensorrt_unavailable_reason

    report = json.loads((report_dir / "bench.json").read_text())
    rows = [r for r in report["pipeline"] + report["detector"] if r["variant"] == "tensorrt"]
    assert len(rows) == 2
    if tensorrt_unavailable_reason("cpu"):
        assert all("error" in r and "CUDA" in r["error"] for r in rows)


def test_markdown_report(report_dir):
    text = (report_dir / "bench.md").read_text()
    assert "| size | backend | batch | msg_in | prepare |" in text
    assert "| 96x64 | torch |" in text and "skipped:" in text
    assert "AMD" in text or "CPU:" in text


def test_compare_rows_use_their_settings(tmp_path):
    code = main(["--sizes", "96x64", "--backends", "torch", "--runs", "2", "--warmup", "1", "--pipeline-only",
                 "--compare", "previous", "fusion_scheme=two_scale", "detector_mix=0.5",
                 "--out", str(tmp_path), "--quiet"])
    assert code == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["pipeline"]
    assert [row["variant"] for row in rows] == ["torch", "torch [previous]"]
    assert all(row["pairs_per_s"] > 0 for row in rows)
    assert main(["--compare", "bad", "fusion_scheme=wavelet", "--quiet"]) == 2


def test_usage_errors(capsys):
    assert main(["--sizes", "big", "--quiet"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["--set", "no_such_field=1", "--quiet"]) == 2
    assert main(["--set", "detector_scale=99", "--quiet"]) == 2
    assert main(["--runs", "0", "--quiet"]) == 2


def test_rows_are_on_disk_before_a_later_variant_kills_the_run(tmp_path, monkeypatch):
    """A backend that takes the process down (here: an interrupt from inside the second variant)
    must still leave bench.json with the rows measured before it."""
    real = bench._bench_detector
    calls = []

    def dying(backend, pair, runs, warmup):
        calls.append(backend.name)
        if len(calls) == 2:
            raise KeyboardInterrupt("backend took the process down")
        return real(backend, pair, runs, warmup)

    monkeypatch.setattr(bench, "_bench_detector", dying)
    with pytest.raises(KeyboardInterrupt):
        main(["--sizes", "96x64", "--backends", "torch", "torch:threads=1", "--runs", "1", "--warmup", "0",
              "--detector-only", "--out", str(tmp_path), "--quiet"])
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [row["variant"] for row in report["detector"]] == ["torch"] and report["detector"][0]["ms"]["median"] > 0
    assert "| torch |" in (tmp_path / "bench.md").read_text()


def test_an_unexpected_backend_exception_is_a_reported_row(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise AttributeError("'Builder' object has no attribute 'platform_has_fast_fp16'")

    monkeypatch.setattr(bench, "_bench_detector", broken)
    assert main(["--sizes", "96x64", "--backends", "torch", "--runs", "1", "--warmup", "0", "--detector-only",
                 "--out", str(tmp_path), "--quiet"]) == 0
    row = json.loads((tmp_path / "bench.json").read_text())["detector"][0]
    assert row["error"].startswith("AttributeError: 'Builder'")


def test_batched_detector_rows_are_separate(tmp_path):
    assert main(["--sizes", "96x64", "--backends", "torch", "--runs", "1", "--warmup", "0", "--detector-only",
                 "--batch", "1", "3", "--set", "detector_scale=1.0", "--out", str(tmp_path), "--quiet"]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["detector"]
    assert [row["batch"] for row in rows] == [1, 3]
    single, batched = rows
    assert batched["pairs_per_s"] == pytest.approx(3 * 1000.0 / batched["ms"]["median"])
    assert single["pairs_per_s"] == pytest.approx(1000.0 / single["ms"]["median"])
    assert main(["--batch", "0", "--quiet"]) == 2


def test_batched_pipeline_rows_are_separate(tmp_path):
    assert main(["--sizes", "96x64", "--backends", "torch", "--runs", "2", "--warmup", "1", "--pipeline-only",
                 "--torch-ops", "--batch", "1", "2", "--out", str(tmp_path), "--quiet"]) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["pipeline"]
    assert [row["batch"] for row in rows] == [1, 2] and all("error" not in row for row in rows)
    batched = rows[1]
    assert batched["pairs_per_s"] == pytest.approx(2 * 1000.0 / batched["stages"]["total"]["median"])
    assert batched["stages"]["detect"]["median"] > 0
    assert "| 96x64 | torch | 2 |" in (tmp_path / "bench.md").read_text()
