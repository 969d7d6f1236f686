"""Tests of ivif_ros.data: reading images, gray collapse, the layout table, the data root."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.core.errors import FusionInputError
from ivif_ros.data import LAYOUTS, data_root, detect_layout, find_pairs, read_image, to_single_channel


def _write(path: Path, image: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((8, 8), np.uint8) if image is None else image)


# ---------------------------------------------------------------------------------------------
# read_image / to_single_channel
# ---------------------------------------------------------------------------------------------
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
    with pytest.raises(FusionInputError, match="no such file"):
        read_image(tmp_path)  # a folder is not an image file
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(FusionInputError, match="empty.png: not a readable image"):
        read_image(tmp_path / "empty.png", "ir")
    _write(tmp_path / "ok.png")
    with pytest.raises(FusionInputError, match="role must be"):
        read_image(tmp_path / "ok.png", "thermal")


def test_read_colour_visible_and_infrared(tmp_path):
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    _write(tmp_path / "c.png", colour)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", "vis"), colour)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", "ir"), cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", "gray"), cv2.imread(str(tmp_path / "c.png"), 0))
    bgra = np.dstack([colour, np.full((12, 16), 200, np.uint8)])
    _write(tmp_path / "a.png", bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", "vis"), colour)  # alpha dropped
    gray16 = rng.integers(0, 65535, (6, 7), dtype=np.uint16)
    _write(tmp_path / "g16.png", np.dstack([gray16] * 3))
    out = read_image(tmp_path / "g16.png", "vis")
    assert out.dtype == np.uint16 and out.shape == (6, 7) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, gray16)


def test_to_single_channel():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_single_channel(gray) is gray
    np.testing.assert_array_equal(to_single_channel(gray[:, :, None]), gray)
    np.testing.assert_array_equal(to_single_channel(np.dstack([gray] * 3)), gray)
    np.testing.assert_array_equal(to_single_channel(np.dstack([gray, gray, gray, gray + 1])), gray)  # alpha ignored
    colour = np.dstack([gray, gray + 1, gray + 2])
    np.testing.assert_array_equal(to_single_channel(colour), cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    np.testing.assert_array_equal(to_single_channel(colour, convert_colour=False), colour)
    rgba = np.dstack([colour, gray])
    np.testing.assert_array_equal(to_single_channel(rgba, convert_colour=False), colour)
    deep = np.dstack([gray.astype(np.uint16) * 1000] * 3)
    assert to_single_channel(deep).dtype == np.uint16
    for bad in (np.zeros(5), np.zeros((2, 2, 2)), np.zeros((2, 2, 3, 1))):
        with pytest.raises(FusionInputError, match="shape"):
            to_single_channel(bad)


# ---------------------------------------------------------------------------------------------
# find_pairs with explicit --ir/--vis
# ---------------------------------------------------------------------------------------------
def test_find_pairs_by_stem_reports_missing_partners(tmp_path):
    for name in ("a", "b"):
        _write(tmp_path / "ir" / f"{name}.png")
    for name in ("b", "c"):
        _write(tmp_path / "vis" / f"{name}.jpg")
    pairs, problems = find_pairs(ir=tmp_path / "ir", vis=tmp_path / "vis")
    assert [p[0] for p in pairs] == ["b"]
    assert any("a.png: no visible partner" in p for p in problems)
    assert any("c.jpg: no infrared partner" in p for p in problems)


def test_find_pairs_tno_patterns(tmp_path):
    for k in ("1", "2"):
        _write(tmp_path / "IR" / f"IR{k}.png")
        _write(tmp_path / "VIS" / f"VIS{k}.png")
    folders = {"ir": tmp_path / "IR", "vis": tmp_path / "VIS"}
    pairs, problems = find_pairs(**folders, ir_pattern="IR{k}.png", vis_pattern="VIS{k}.png")
    assert [p[1].name for p in pairs] == ["IR1.png", "IR2.png"] and not problems
    assert [p.name for p in pairs] == ["1", "2"]
    with pytest.raises(FusionInputError, match="exactly once"):
        find_pairs(**folders, ir_pattern="IR.png", vis_pattern="VIS{k}.png")
    # without patterns the TNO names are recognised too
    assert [p.name for p in find_pairs(**folders)[0]] == ["1", "2"]


def test_find_pairs_mixed_file_and_folder(tmp_path):
    _write(tmp_path / "x.png")
    with pytest.raises(FusionInputError, match="both be files or both be folders"):
        find_pairs(ir=tmp_path / "x.png", vis=tmp_path)
    with pytest.raises(FusionInputError, match="no such file or folder"):
        find_pairs(ir=tmp_path / "nope", vis=tmp_path)
    with pytest.raises(FusionInputError, match="together"):
        find_pairs(ir=tmp_path)
    with pytest.raises(FusionInputError, match="give a dataset folder"):
        find_pairs()
    pairs, problems = find_pairs(ir=tmp_path / "x.png", vis=tmp_path / "x.png")
    assert pairs == [("x", tmp_path / "x.png", tmp_path / "x.png")] and problems == []


# ---------------------------------------------------------------------------------------------
# find_pairs over the layout table
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ir_folder", "vis_folder", "layout", "ir_names", "vis_names", "names"),
    [
        ("ir", "vis", "ir-vis", ["b.png", "a.png"], ["a.jpg", "b.jpg"], ["a", "b"]),
        ("Ir", "Vis", "ir-vis", ["00012.png"], ["00012.png"], ["00012"]),  # M3FD capitalisation
        ("ir", "vi", "msrs", ["00004N.png", "00055D.png"], ["00004N.png", "00055D.png"], ["00004N", "00055D"]),
        ("infrared", "visible", "llvip", ["010001.jpg", "010002.jpg"], ["010001.jpg", "010002.jpg"],
         ["010001", "010002"]),
        ("cropinfrared", "crop_LR_visible", "roadscene", ["FLIR_00594.jpg", "FLIR_video_04215.jpg"],
         ["FLIR_00594.jpg", "FLIR_video_04215.jpg"], ["FLIR_00594", "FLIR_video_04215"]),
        ("ir", "color", "vot-rgbt", ["00000002i.jpg", "00000010i.jpg"], ["00000002v.jpg", "00000010v.jpg"],
         ["00000002", "00000010"]),
        ("infrared", "color", "vot-rgbt", ["00000001.jpg"], ["00000001.jpg"], ["00000001"]),
        ("lwir", "visible", "kaist", ["I00000.jpg"], ["I00000.jpg"], ["I00000"]),
        ("ir", "vis", "ir-vis", ["IR2.png", "IR10.png", "IR1.png"], ["VIS1.png", "VIS10.png", "VIS2.png"],
         ["1", "2", "10"]),
        ("", "", "tno", ["IR_7.bmp", "IR10.png", "IR8.png"], ["VIS_7.bmp", "VIS8.png", "VIS10.png"],
         ["7", "8", "10"]),
    ],
)
def test_find_pairs_each_layout(tmp_path, ir_folder, vis_folder, layout, ir_names, vis_names, names):
    for name in ir_names:
        _write(tmp_path / ir_folder / name)
    for name in vis_names:
        _write(tmp_path / vis_folder / name)
    found, ir_dir, vis_dir = detect_layout(tmp_path)
    assert (found.name, ir_dir, vis_dir) == (layout, tmp_path / ir_folder, tmp_path / vis_folder)
    pairs, problems = find_pairs(tmp_path)
    assert [p.name for p in pairs] == names and problems == []
    for pair in pairs:
        assert pair.ir.parent == tmp_path / ir_folder and pair.vis.parent == tmp_path / vis_folder
        assert pair.ir.name != pair.vis.name or ir_folder != vis_folder


def test_every_layout_of_the_table_is_detected(tmp_path):
    for index, layout in enumerate(LAYOUTS):
        root = tmp_path / str(index)
        ir_name, vis_name = layout.patterns[0][0].replace("{k}", "1"), layout.patterns[0][1].replace("{k}", "1")
        _write(root / layout.ir_folder / f"{ir_name}.png")
        _write(root / layout.vis_folder / f"{vis_name}.png")
        found = detect_layout(root)[0]
        assert (found.ir_folder, found.vis_folder) == (layout.ir_folder, layout.vis_folder)
        assert len(find_pairs(root)[0]) == 1


def test_llvip_splits_and_unpaired_files(tmp_path):
    for split, count in (("train", 2), ("test", 1)):
        for k in range(count):
            _write(tmp_path / "infrared" / split / f"0{k}.jpg")
    for k in range(3):
        _write(tmp_path / "visible" / "train" / f"0{k}.jpg")
    pairs, problems = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["train/00", "train/01"]
    assert any("no infrared partner" in p and "train/02.jpg" in p for p in problems)
    assert any("no visible partner" in p and "test/00.jpg" in p for p in problems)


def test_natural_order(tmp_path):
    for k in (10, 2, 1):
        _write(tmp_path / "ir" / f"frame{k}.png")
        _write(tmp_path / "vis" / f"frame{k}.png")
    assert [p.name for p in find_pairs(tmp_path)[0]] == ["frame1", "frame2", "frame10"]


def test_tno_names_beside_other_images(tmp_path):
    _write(tmp_path / "IR3.png")
    _write(tmp_path / "VIS3.png")
    _write(tmp_path / "IR4.png")
    _write(tmp_path / "notes.png")
    pairs, problems = find_pairs(tmp_path)
    assert [(p.name, p.ir.name, p.vis.name) for p in pairs] == [("3", "IR3.png", "VIS3.png")]
    assert problems == [f"{tmp_path / 'IR4.png'}: no visible partner"]


def test_dataset_root_with_sequences_names_them(tmp_path):
    for name in ("seqA", "seqB"):
        _write(tmp_path / name / "ir" / "00000001.png")
        _write(tmp_path / name / "color" / "00000001.png")
    with pytest.raises(FusionInputError, match="2 sequences .*seqA, seqB"):
        find_pairs(tmp_path)
    assert [p.name for p in find_pairs(tmp_path / "seqA")[0]] == ["00000001"]


def test_layout_errors(tmp_path):
    with pytest.raises(FusionInputError, match="not found"):
        find_pairs(tmp_path / "missing")
    with pytest.raises(FusionInputError, match="no paired image folders"):
        find_pairs(tmp_path)
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    assert find_pairs(tmp_path) == ([], [])


# ---------------------------------------------------------------------------------------------
# data_root
# ---------------------------------------------------------------------------------------------
def test_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("IVIF_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(tmp_path / "..") == tmp_path / ".."
    with pytest.raises(FusionInputError, match="not a folder"):
        data_root(tmp_path / "missing")
    monkeypatch.setenv("IVIF_DATA", str(tmp_path / "missing"))
    with pytest.raises(FusionInputError, match=r"\$IVIF_DATA .* not a folder"):
        data_root()
    monkeypatch.delenv("IVIF_DATA")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    beside_source = Path(__file__).resolve().parents[2] / "shared" / "data"
    (tmp_path / "shared" / "data").mkdir(parents=True)
    expected = beside_source if beside_source.is_dir() else tmp_path / "shared" / "data"
    assert data_root() == expected  # ../shared/data beside the source tree, else beside the working folder


def test_real_shared_layouts():
    """The shared data sets (when present) all use ir/ + vis/ and pair every file."""
    try:
        root = data_root()
    except FusionInputError as error:
        pytest.skip(str(error))
    if root is None:
        pytest.skip("shared data not found (set IVIF_DATA or place it at ../shared/data)")
    for name in ("msrs", "roadscene", "llvip"):
        if not (root / name).is_dir():
            continue
        pairs, problems = find_pairs(root / name)
        assert detect_layout(root / name)[0].name == "ir-vis"
        assert pairs and problems == []
        assert sorted(p.name for p in pairs) == sorted(p.stem for p in (root / name / "ir").iterdir())


def test_importable_first_and_after_the_core():
    """The core uses to_single_channel and the data module uses the core's errors: no import cycle."""
    import subprocess
    import sys

    for first, second in (("ivif_ros.data", "ivif_ros.core"), ("ivif_ros.core", "ivif_ros.data")):
        code = f"import {first}, {second}; print('ok')"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.stdout.strip() == "ok", result.stderr


def test_same_name_with_two_suffixes_is_reported(tmp_path):
    _write(tmp_path / "ir" / "a.png")
    _write(tmp_path / "ir" / "a.jpg")
    _write(tmp_path / "vis" / "a.png")
    pairs, problems = find_pairs(tmp_path)
    assert [(p.name, p.ir.name) for p in pairs] == [("a", "a.jpg")]  # sorted by path: a.jpg first
    assert problems == [f"{tmp_path / 'ir' / 'a.png'}: same pair name as a.jpg, ignored"]
