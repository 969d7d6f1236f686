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
    assert main(["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--out", str(tmp_path / "out"), "--backend", "torch"]) == 0
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
    code = main(["--ir", str(data / "ir"), "--vis", str(data / "vis"), "--out", str(tmp_path / "out"), "--backend", "torch"])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken" in err and "lonely.png: no visible partner" in err and "aspect ratio" in err
    written = sorted(p.name for p in (tmp_path / "out" / "fused").iterdir())
    assert written == ["p0.png", "p1.png"]  # nothing half-written for the failures


def test_single_files_and_missing_path(tmp_path):
    data = _dataset(tmp_path / "data")
    assert main(["--ir", str(data / "ir" / "p0.png"), "--vis", str(data / "vis" / "p0.png"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert (tmp_path / "o" / "fused" / "p0.png").exists()
    assert main(["--ir", str(tmp_path / "nope"), "--vis", str(data / "vis"), "--out", str(tmp_path / "o")]) == 1
