"""Tests of ivif_ros.bag.writer: make -> read back gives identical pixels, stamps and headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ivif_ros.bag import BagError, MakeOptions, find_image_pairs, make_bag
from ivif_ros.bag.reader import read_images
from ivif_ros.bag.storage import open_bag, topic_stats
from ivif_ros.ros.conversions import to_bgr

from _bagdata import START_NS, write_pairs

THERMAL, RGB = "/thermal/image_raw", "/rgb/image_raw"


def _by_topic(path: Path, topics: tuple[str, ...] = (THERMAL, RGB)) -> dict[str, list]:
    found: dict[str, list] = {topic: [] for topic in topics}
    for image in read_images(path, topics):
        found[image.topic].append(image)
    return found


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_pixels_and_stamps(dataset: tuple[Path, list], tmp_path: Path, storage: str) -> None:
    root, frames = dataset
    pairs, _ = find_image_pairs(root)
    options = MakeOptions(rate=20.0, start_ns=START_NS, offset_ms=-7.5, storage=storage)
    summary = make_bag(pairs, tmp_path / "bag", options)
    assert summary.frames == len(frames)
    assert summary.topics == {THERMAL: len(frames), RGB: len(frames)}

    read = _by_topic(tmp_path / "bag")
    for k, (ir, vis) in enumerate(frames):
        thermal, rgb = read[THERMAL][k], read[RGB][k]
        assert thermal.encoding == "mono8" and thermal.frame_id == "thermal_camera"
        assert rgb.encoding == "bgr8" and rgb.frame_id == "rgb_camera"
        np.testing.assert_array_equal(thermal.array, ir)  # 3-channel gray collapsed to mono8
        np.testing.assert_array_equal(rgb.array, vis)
        assert rgb.stamp_ns == START_NS + k * 50_000_000
        assert thermal.stamp_ns == rgb.stamp_ns - 7_500_000
        assert (thermal.log_ns, rgb.log_ns) == (thermal.stamp_ns, rgb.stamp_ns)
    assert [i.stamp_ns for i in read[RGB]] == summary.rgb_stamps_ns


def test_mono16_rgb8_jitter_camera_info(tmp_path: Path) -> None:
    frames = write_pairs(tmp_path / "data", 5, thermal_bits=16)
    pairs, _ = find_image_pairs(tmp_path / "data")
    options = MakeOptions(
        rate=10.0, jitter_ms=20.0, offset_ms=3.0, start_ns=START_NS, rgb_encoding="rgb8",
        camera_info=True, thermal_topic="cam/ir/image_raw", thermal_frame="ir_link",
    )
    summary = make_bag(pairs, tmp_path / "bag", options)
    topics = ("/cam/ir/image_raw", RGB)
    read = _by_topic(tmp_path / "bag", topics)
    for k, (ir, vis) in enumerate(frames):
        thermal, rgb = read[topics[0]][k], read[RGB][k]
        assert thermal.encoding == "mono16" and thermal.array.dtype == np.uint16
        np.testing.assert_array_equal(thermal.array, ir)
        assert rgb.encoding == "rgb8"
        np.testing.assert_array_equal(to_bgr(rgb.array, "rgb8"), vis)
        nominal = START_NS + k * 100_000_000
        assert abs(rgb.stamp_ns - nominal) <= 20_000_000
        assert abs(thermal.stamp_ns - nominal - 3_000_000) <= 20_000_000
        assert thermal.frame_id == "ir_link"
    assert summary.thermal_stamps_ns != [s + 3_000_000 for s in summary.rgb_stamps_ns]  # jittered
    with open_bag(tmp_path / "bag") as reader:
        stats = topic_stats(reader)
    assert stats["/cam/ir/camera_info"].msgtype == "sensor_msgs/msg/CameraInfo"
    assert stats["/cam/ir/camera_info"].count == stats["/rgb/camera_info"].count == 5


def test_large_offset_keeps_log_order(dataset: tuple[Path, list], tmp_path: Path) -> None:
    pairs, _ = find_image_pairs(dataset[0])
    make_bag(pairs[:4], tmp_path / "bag", MakeOptions(rate=10.0, offset_ms=250.0, start_ns=START_NS))
    logs = [image.log_ns for image in read_images(tmp_path / "bag", (THERMAL, RGB))]
    assert logs == sorted(logs) and len(logs) == 8


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (MakeOptions(rate=0.0), "--rate"),
        (MakeOptions(rate=10.0, jitter_ms=50.0), "--jitter-ms"),
        (MakeOptions(rgb_encoding="mono8"), "--rgb-encoding"),
        (MakeOptions(rgb_topic="thermal/image_raw"), "must differ"),
        (MakeOptions(storage="rosbag1"), "unknown storage"),
    ],
)
def test_bad_options(dataset: tuple[Path, list], tmp_path: Path, options: MakeOptions, match: str) -> None:
    pairs, _ = find_image_pairs(dataset[0])
    with pytest.raises(BagError, match=match):
        make_bag(pairs[:1], tmp_path / "bag", options)


def test_existing_output_and_unreadable_image(dataset: tuple[Path, list], tmp_path: Path) -> None:
    pairs, _ = find_image_pairs(dataset[0])
    make_bag(pairs[:1], tmp_path / "bag", MakeOptions(start_ns=START_NS))
    with pytest.raises(BagError, match="exists already"):
        make_bag(pairs[:1], tmp_path / "bag")
    make_bag(pairs[:2], tmp_path / "bag", MakeOptions(start_ns=START_NS), overwrite=True)

    broken = tmp_path / "broken"
    write_pairs(broken, 1, size=(16, 16))
    (broken / "ir" / "00000001.png").write_bytes(b"not a png")
    with pytest.raises(BagError, match="cannot read image"):
        make_bag(find_image_pairs(broken)[0], tmp_path / "bag2")
    assert not (tmp_path / "bag2").exists()  # the half-written bag is removed
