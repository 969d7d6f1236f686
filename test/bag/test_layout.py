"""Tests of ivif_ros.bag.layout: ivif_ros.data.find_pairs as bag errors (layout details: test/test_data.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivif_ros.bag import BagError, find_image_pairs
from ivif_ros.data import detect_layout

from _bagdata import write_pairs


@pytest.mark.parametrize(
    ("ir_name", "vis_name", "layout"),
    [("ir", "vis", "ir-vis"), ("infrared", "visible", "llvip"), ("cropinfrared", "crop_LR_visible", "roadscene"),
     ("ir", "color", "vot-rgbt")],
)
def test_detects_layout(tmp_path: Path, ir_name: str, vis_name: str, layout: str) -> None:
    write_pairs(tmp_path, 3, ir_name=ir_name, vis_name=vis_name, size=(16, 16))
    found, ir_dir, vis_dir = detect_layout(tmp_path)
    assert (found.name, ir_dir, vis_dir) == (layout, tmp_path / ir_name, tmp_path / vis_name)
    pairs, problems = find_image_pairs(tmp_path)
    assert [p.name for p in pairs] == ["00000001", "00000002", "00000003"]
    assert problems == []


def test_vot_markers_and_natural_order(tmp_path: Path) -> None:
    write_pairs(tmp_path, 3, ir_name="ir", vis_name="color", ir_suffix="i", vis_suffix="v", size=(16, 16))
    pairs, _ = find_image_pairs(tmp_path)
    assert [(p.ir.name, p.vis.name) for p in pairs] == [
        (f"0000000{k}i.png", f"0000000{k}v.png") for k in (1, 2, 3)
    ]


def test_llvip_splits_and_unpaired_files(tmp_path: Path) -> None:
    write_pairs(tmp_path / "infrared", 2, ir_name="train", vis_name="train", size=(16, 16))
    write_pairs(tmp_path / "visible", 3, ir_name="train", vis_name="train", size=(16, 16))
    pairs, problems = find_image_pairs(tmp_path)
    assert [p.name for p in pairs] == ["train/00000001", "train/00000002"]
    assert any("no infrared partner" in p and "00000003" in p for p in problems)


def test_explicit_folders(tmp_path: Path) -> None:
    write_pairs(tmp_path, 2, ir_name="a", vis_name="b", size=(16, 16))
    pairs, _ = find_image_pairs(ir_dir=tmp_path / "a", vis_dir=tmp_path / "b")
    assert len(pairs) == 2
    with pytest.raises(BagError, match="together"):
        find_image_pairs(ir_dir=tmp_path / "a")


def test_dataset_root_with_sequences_names_them(tmp_path: Path) -> None:
    for name in ("seqA", "seqB"):
        write_pairs(tmp_path / name, 1, ir_name="ir", vis_name="color", size=(16, 16))
    with pytest.raises(BagError, match="2 sequences .*seqA, seqB"):
        find_image_pairs(tmp_path)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="not found"):
        find_image_pairs(tmp_path / "missing")
    with pytest.raises(BagError, match="no paired image folders"):
        find_image_pairs(tmp_path)
    (tmp_path / "ir").mkdir()
    (tmp_path / "vis").mkdir()
    with pytest.raises(BagError, match="no matching image names"):
        find_image_pairs(tmp_path)
