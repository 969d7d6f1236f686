import cv2
import numpy as np

from ivif_ros.cli.fuse import main
from ivif_ros.core.synthetic import synthetic_pair


def _dataset(root):
    (root / "ir").mkdir(parents=True)
    (root / "vis").mkdir()
    for index in range(2):
        ir, vis = synthetic_pair(64, 80, seed=index)
        cv2.imwrite(str(root / "ir" / f"p{index}.png"), ir)
        cv2.imwrite(str(root / "vis" / f"p{index}.png"), vis)
    return root


def test_fuses_folder_and_writes_input_size(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    argv = ["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--out", str(tmp_path / "out"), "--backend", "torch"]
    assert main(argv) == 0
    for name in ("p0", "p1"):
        fused = cv2.imread(str(tmp_path / "out" / "fused" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        weights = cv2.imread(str(tmp_path / "out" / "weights" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert fused.shape == (64, 80, 3) and weights.shape == (64, 80)
    assert "per pair median" in capsys.readouterr().out


def test_bad_pairs_reported_batch_continues(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    (data / "ir" / "broken.png").write_bytes(b"garbage")
    cv2.imwrite(str(data / "vis" / "broken.png"), np.zeros((64, 80, 3), np.uint8))
    cv2.imwrite(str(data / "ir" / "lonely.png"), np.zeros((64, 80), np.uint8))
    cv2.imwrite(str(data / "ir" / "wide.png"), np.zeros((64, 200), np.uint8))
    cv2.imwrite(str(data / "vis" / "wide.png"), np.zeros((64, 80, 3), np.uint8))
    code = main(
        ["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--out", str(tmp_path / "out"), "--backend", "torch"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "broken" in err and "lonely.png: no visible partner" in err and "aspect ratio" in err
    written = sorted(p.name for p in (tmp_path / "out" / "fused").iterdir())
    assert written == ["p0.png", "p1.png"]  # nothing half-written for the failures


def test_single_files_and_missing_path(tmp_path):
    data = _dataset(tmp_path / "data")
    assert main(["--ir", str(data / "ir" / "p0.png"), "--vis", str(data / "vis" / "p0.png"),
                 "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert (tmp_path / "o" / "fused" / "p0.png").exists()
    assert main(["--ir", str(tmp_path / "nope"), "--vis", str(data / "vis"), "--out", str(tmp_path / "o")]) == 1


def test_batched_run_writes_what_single_calls_write(tmp_path):
    """--batch 2 gives the files a run of single calls gives (grouping, order, writing); a bad pair
    inside a batch costs only itself. (Batched-vs-single equality of the torch path itself:
    test/core/test_batched.py.)"""
    data = _dataset(tmp_path / "data")
    cv2.imwrite(str(data / "ir" / "p2.png"), np.zeros((64, 80), np.uint8))
    (data / "vis" / "p2.png").write_bytes(b"not a png")
    ir, vis = synthetic_pair(64, 80, seed=5)
    cv2.imwrite(str(data / "ir" / "p3.png"), ir)
    cv2.imwrite(str(data / "vis" / "p3.png"), vis)
    common = ["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--backend", "torch", "--device", "cpu",
              "--set", "detector_scale=1.0", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "single")]) == 1
    assert main(common + ["--out", str(tmp_path / "batched"), "--batch", "2"]) == 1
    for name in ("p0", "p1", "p3"):
        for kind in ("fused", "weights"):
            single = cv2.imread(str(tmp_path / "single" / kind / f"{name}.png"), cv2.IMREAD_UNCHANGED)
            batched = cv2.imread(str(tmp_path / "batched" / kind / f"{name}.png"), cv2.IMREAD_UNCHANGED)
            assert single is not None and np.array_equal(single, batched), (name, kind)
    assert not (tmp_path / "batched" / "fused" / "p2.png").exists()


def test_set_changes_the_fusion_and_bad_values_are_usage_errors(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    common = ["--ir", str(data / "ir" / "p0.png"), "--vis", str(data / "vis" / "p0.png"),
              "--backend", "torch", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--set", "output_stretch=0", "--set", "detail_gain=3"]) == 0
    plain = cv2.imread(str(tmp_path / "a" / "fused" / "p0.png"))
    changed = cv2.imread(str(tmp_path / "b" / "fused" / "p0.png"))
    assert np.abs(plain.astype(int) - changed).mean() > 1.0
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "c"), "--set", "thermal_percentiles=5"]) == 2
    assert "thermal_percentiles must have 2 elements" in capsys.readouterr().err
    assert main([*common, "--out", str(tmp_path / "c"), "--device", "gpu7"]) == 2
    assert "device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
