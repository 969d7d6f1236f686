"""Tests of ivif_ros.bag.storage: missing, truncated and corrupt bags and missing topics give BagError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ivif_ros.bag import BagError
from ivif_ros.bag.reader import read_images
from ivif_ros.bag.storage import header_stamp_ns, normalize_topic, open_bag, require_topics, set_header_stamp


def _copy(bag: Path, tmp_path: Path) -> tuple[Path, Path]:
    target = tmp_path / "bag"
    shutil.copytree(bag, target)
    return target, next(target.glob("*.mcap"))


def test_missing_bag(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="bag not found"), open_bag(tmp_path / "nope"):
        pass


def test_truncated_bag(small_bag: Path, tmp_path: Path) -> None:
    bag, data = _copy(small_bag, tmp_path)
    with data.open("r+b") as handle:
        handle.truncate(data.stat().st_size // 2)
    with pytest.raises(BagError, match="cannot open bag .*truncated or corrupt"):
        list(read_images(bag, ["thermal/image_raw"]))


def test_garbage_bag_file(small_bag: Path, tmp_path: Path) -> None:
    bag, data = _copy(small_bag, tmp_path)
    data.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(BagError, match="cannot open bag"):
        list(read_images(bag, ["thermal/image_raw"]))


def test_corrupt_chunk(small_bag: Path, tmp_path: Path) -> None:
    bag, data = _copy(small_bag, tmp_path)
    raw = bytearray(data.read_bytes())
    raw[40:104] = b"\xff" * 64  # inside the first chunk: its checksum no longer matches
    data.write_bytes(bytes(raw))
    with pytest.raises(BagError, match="corrupt"):
        list(read_images(bag, ["thermal/image_raw", "rgb/image_raw"]))


def test_folder_without_metadata(small_bag: Path, tmp_path: Path) -> None:
    bag, _ = _copy(small_bag, tmp_path)
    (bag / "metadata.yaml").unlink()
    with pytest.raises(BagError, match="cannot open bag"), open_bag(bag):
        pass


def test_missing_topic_lists_existing(small_bag: Path) -> None:
    with open_bag(small_bag) as reader:
        with pytest.raises(BagError) as info:
            require_topics(reader, ["thermal/image_raw", "/lidar/points"])
        assert "/lidar/points not in" in str(info.value)
        assert "/rgb/image_raw (Image, 8)" in str(info.value)
        with pytest.raises(BagError, match="is sensor_msgs/msg/CameraInfo, expected sensor_msgs/msg/Image"):
            require_topics(reader, ["rgb/camera_info"])
        assert set(require_topics(reader, ["rgb/image_raw"])) == {"rgb/image_raw"}


def test_header_stamp_patch(small_bag: Path) -> None:
    assert normalize_topic("a/b") == "/a/b" == normalize_topic("/a/b")
    with open_bag(small_bag) as reader:
        _, _, raw = next(iter(reader.messages()))
    data = bytearray(raw)
    stamp = header_stamp_ns(data)
    set_header_stamp(data, stamp + 1_500_000_001)
    assert header_stamp_ns(data) == stamp + 1_500_000_001
    assert data[16:] == bytearray(raw)[16:]
