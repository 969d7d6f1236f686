import cv2
import numpy as np
import pytest

from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.io import find_pairs, read_image


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def test_read_three_channel_gray_ir_is_collapsed(tmp_path):
    gray = np.random.default_rng(0).integers(0, 255, (20, 30), dtype=np.uint8)
    _write(tmp_path / "ir.png", np.dstack([gray] * 3))
    out = read_image(tmp_path / "ir.png", "ir")
    assert out.shape == (20, 30)
    np.testing.assert_array_equal(out, gray)


def test_read_keeps_16bit(tmp_path):
    image = np.full((8, 8), 40000, np.uint16)
    _write(tmp_path / "t.png", image)
    assert read_image(tmp_path / "t.png", "ir").dtype == np.uint16


def test_read_errors(tmp_path):
    with pytest.raises(FusionInputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(FusionInputError, match="not a readable image"):
        read_image(tmp_path / "bad.png")


def test_find_pairs_by_stem_reports_missing_partners(tmp_path):
    image = np.zeros((8, 8), np.uint8)
    for name in ("a", "b"):
        _write(tmp_path / "ir" / f"{name}.png", image)
    for name in ("b", "c"):
        _write(tmp_path / "vis" / f"{name}.jpg", image)
    pairs, problems = find_pairs(tmp_path / "ir", tmp_path / "vis")
    assert [p[0] for p in pairs] == ["b"]
    assert any("a.png: no visible partner" in p for p in problems)
    assert any("c.jpg: no infrared partner" in p for p in problems)


def test_find_pairs_tno_patterns(tmp_path):
    image = np.zeros((8, 8), np.uint8)
    for k in ("1", "2"):
        _write(tmp_path / "IR" / f"IR{k}.png", image)
        _write(tmp_path / "VIS" / f"VIS{k}.png", image)
    pairs, problems = find_pairs(tmp_path / "IR", tmp_path / "VIS", "IR{k}.png", "VIS{k}.png")
    assert [p[1].name for p in pairs] == ["IR1.png", "IR2.png"] and not problems
    with pytest.raises(FusionInputError, match="exactly once"):
        find_pairs(tmp_path / "IR", tmp_path / "VIS", "IR.png", "VIS{k}.png")


def test_find_pairs_mixed_file_and_folder(tmp_path):
    _write(tmp_path / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(FusionInputError, match="both be files or both be folders"):
        find_pairs(tmp_path / "x.png", tmp_path)
