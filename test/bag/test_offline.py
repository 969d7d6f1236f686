"""Tests of ivif_ros.bag.offline: pairing by stamp and offline fusion into a new bag."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ivif_ros.backends.choice import DetectorChoice
from ivif_ros.bag import BagError
from ivif_ros.bag.offline import FuseOptions, fuse_bag, pair_by_stamp
from ivif_ros.bag.reader import read_images
from ivif_ros.bag.storage import open_bag, topic_stats


def test_pair_by_stamp_one_to_one() -> None:
    thermal = [1000, 2010, 2990, 5000, 9000]
    rgb = [1005, 2000, 3000, 4000, 9100]
    assert pair_by_stamp(thermal, rgb, slop_ns=20) == [(0, 0), (1, 1), (2, 2)]
    assert pair_by_stamp(thermal, rgb, slop_ns=1000) == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]
    # two RGB frames compete for one thermal frame: the closer wins, the other stays unpaired
    assert pair_by_stamp([100], [90, 101], slop_ns=50) == [(0, 1)]
    assert pair_by_stamp([], [1, 2], slop_ns=5) == []


@pytest.fixture(scope="module")
def fused(small_bag: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    out = tmp_path_factory.mktemp("fused") / "out"
    summary = fuse_bag(small_bag, out, FuseOptions(colored=True, detector=DetectorChoice(device="cpu")), progress=False)
    return out, summary.csv_path, summary


def test_fuse_topics_counts_and_headers(small_bag: Path, fused: tuple) -> None:
    out, csv_path, summary = fused
    assert summary.pairs == 8 and summary.skipped == 0
    assert summary.unpaired == {"/thermal/image_raw": 0, "/rgb/image_raw": 0}
    with open_bag(out) as reader:
        counts = {name: (s.msgtype, s.count) for name, s in topic_stats(reader).items()}
    image = "sensor_msgs/msg/Image"
    assert counts == {"/fused/image": (image, 8), "/weight_map/image": (image, 8), "/weight_map/colored": (image, 8)}

    rgb = list(read_images(small_bag, ["rgb/image_raw"]))
    outputs = list(read_images(out, ["fused/image", "weight_map/image", "weight_map/colored"]))
    for topic, encoding in (("/fused/image", "bgr8"), ("/weight_map/image", "32FC1"), ("/weight_map/colored", "bgr8")):
        images = [o for o in outputs if o.topic == topic]
        assert [o.stamp_ns for o in images] == [r.stamp_ns for r in rgb]
        assert {o.frame_id for o in images} == {"rgb_camera"}
        assert {o.encoding for o in images} == {encoding}
        assert images[0].array.shape[:2] == rgb[0].array.shape[:2]
    weights = np.stack([o.array for o in outputs if o.topic == "/weight_map/image"])
    assert weights.dtype == np.float32 and weights.min() >= 0.0 and weights.max() <= 1.0

    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert csv_path == out.with_name("out.csv")
    assert [int(r["pair"]) for r in rows] == list(range(8))
    assert {"prepare_ms", "detect_ms", "fuse_ms", "pipeline_ms", "total_ms"} <= set(rows[0])
    assert all(abs(float(r["offset_ms"]) - 5.0) < 1e-6 for r in rows)


def test_fuse_limit_copy_inputs_and_slop(small_bag: Path, tmp_path: Path) -> None:
    summary = fuse_bag(
        small_bag, tmp_path / "out", FuseOptions(limit=2, copy_inputs=True,
                                                 detector=DetectorChoice(device="cpu")), progress=False
    )
    assert summary.pairs == 2
    assert summary.topics["/fused/image"] == 2 and summary.topics["/rgb/image_raw"] == 8
    assert summary.topics["/thermal/camera_info"] == 8
    with pytest.raises(BagError, match=r"no thermal/RGB pair within --slop-ms 1 \(closest stamps .* 5.0 ms\)"):
        fuse_bag(small_bag, tmp_path / "out2", FuseOptions(slop_ms=1.0), progress=False)


def test_fuse_errors(small_bag: Path, fused: tuple, tmp_path: Path) -> None:
    with pytest.raises(BagError, match="exists already"):
        fuse_bag(small_bag, fused[0], progress=False)
    with pytest.raises(BagError, match="thermal/ir not in .*topics in the bag"):
        fuse_bag(small_bag, tmp_path / "o", FuseOptions(thermal_topic="thermal/ir"), progress=False)
    with pytest.raises(BagError, match="bag not found"):
        fuse_bag(tmp_path / "missing", tmp_path / "o", progress=False)


def test_fuse_in_batches_writes_what_single_calls_write(small_bag: Path, tmp_path: Path) -> None:
    """--batch 3 over 8 pairs (batches of 3, 3 and a flushed 2) on the torch primitives: the same
    images, stamps and CSV order as single calls."""
    import torch

    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core.pipeline import FusionConfig

    torch.manual_seed(0)
    pipe = create_pipeline(FusionConfig(), DetectorChoice(backend="torch", device="cpu"), use_torch=True)
    single = fuse_bag(small_bag, tmp_path / "single", FuseOptions(), progress=False, pipeline=pipe)
    batched = fuse_bag(small_bag, tmp_path / "batched", FuseOptions(batch=3), progress=False, pipeline=pipe)
    assert single.pairs == batched.pairs == 8 and batched.skipped == 0
    topics = ["fused/image", "weight_map/image"]
    expected = list(read_images(tmp_path / "single", topics))
    actual = list(read_images(tmp_path / "batched", topics))
    assert [(o.topic, o.stamp_ns) for o in actual] == [(o.topic, o.stamp_ns) for o in expected]
    for want, got in zip(expected, actual, strict=True):
        if got.array.dtype == np.uint8:
            np.testing.assert_array_equal(got.array, want.array)
        else:  # float weight maps: torch's vectorised sigmoid may differ by 1 ulp with the batch layout
            np.testing.assert_allclose(got.array, want.array, rtol=0, atol=1e-6)
    with batched.csv_path.open() as handle:
        assert [int(r["pair"]) for r in csv.DictReader(handle)] == list(range(8))
    with pytest.raises(BagError, match="--batch"):
        fuse_bag(small_bag, tmp_path / "bad", FuseOptions(batch=0), progress=False)
