"""Tests of ivif_ros.training.baselines: values, shapes, ranges and colour handling."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from ivif_ros.training.baselines import (
    BASELINES,
    fuse_baseline,
    fuse_gff,
    fuse_hmsd_gf,
    fuse_laplacian_pyramid,
    fuse_liu2017,
    fuse_max,
    fuse_mean,
)
from ivif_ros.training.metrics import compute_metrics


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    smooth = cv2.GaussianBlur(rng.uniform(0, 255, (72, 96)), (0, 0), 3.0)
    infrared = np.clip(smooth * 1.4 - 50, 0, 255).astype(np.uint8)
    visible = np.dstack(
        [np.clip(255 - smooth + rng.normal(0, 4, smooth.shape) + shift, 0, 255) for shift in (-20, 0, 25)]
    ).astype(np.uint8)
    return infrared, visible


class TestMeanAndMax:
    def test_mean_rounds_half_up_on_gray(self) -> None:
        ir = np.array([[0, 1, 255]], np.uint8)
        vis = np.array([[1, 2, 254]], np.uint8)
        result = fuse_mean(ir, vis)
        np.testing.assert_array_equal(result.fused, [[1, 2, 255]])
        np.testing.assert_array_equal(result.weights, 0.5)

    def test_max_on_gray(self) -> None:
        ir = np.array([[10, 200]], np.uint8)
        vis = np.array([[50, 100]], np.uint8)
        result = fuse_max(ir, vis)
        np.testing.assert_array_equal(result.fused, [[50, 200]])
        np.testing.assert_array_equal(result.weights, [[1.0, 0.0]])


class TestAllBaselines:
    @pytest.mark.parametrize("name", sorted(BASELINES))
    def test_colour_output_keeps_chroma(self, pair, name) -> None:
        ir, vis = pair
        result = fuse_baseline(name, ir, vis)
        assert result.fused.shape == vis.shape and result.fused.dtype == np.uint8
        assert result.weights.shape == ir.shape and result.weights.dtype == np.float32
        assert result.weights.min() >= 0.0 and result.weights.max() <= 1.0
        fused_crcb = cv2.cvtColor(result.fused, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(int)
        vis_crcb = cv2.cvtColor(vis, cv2.COLOR_BGR2YCrCb)[:, :, 1:].astype(int)
        # Chroma survives the YCrCb round trip up to rounding (and gamut clipping at the extremes).
        assert np.median(np.abs(fused_crcb - vis_crcb)) <= 1

    @pytest.mark.parametrize("name", sorted(BASELINES))
    def test_gray_visible_gives_gray(self, pair, name) -> None:
        ir, vis = pair
        gray = cv2.cvtColor(vis, cv2.COLOR_BGR2GRAY)
        fused = fuse_baseline(name, ir, gray).fused
        assert fused.shape == gray.shape

    @pytest.mark.parametrize("name", sorted(BASELINES))
    def test_identical_sources_are_reproduced(self, pair, name) -> None:
        ir, _ = pair
        fused = fuse_baseline(name, ir, ir).fused
        gain = 275.0 / 255.0 if name == "hmsd_gf" else 1.0  # HMSD-GF's release brightens its output by 275/255
        assert np.abs(fused.astype(int) - np.clip(ir * gain, 0, 255)).max() <= 1

    @pytest.mark.parametrize("name", ["lp", "gff", "liu2017", "hmsd_gf"])
    def test_multiscale_keeps_edges_of_both(self, pair, name) -> None:
        ir, vis = pair
        gray = cv2.cvtColor(vis, cv2.COLOR_BGR2GRAY)
        scores = {method: compute_metrics(ir, gray, fuse_baseline(method, ir, gray).fused, ["Qabf"])["Qabf"]
                  for method in ("mean", name)}
        assert scores[name] > scores["mean"]

    def test_three_channel_equal_infrared_is_collapsed(self, pair) -> None:
        ir, vis = pair
        np.testing.assert_array_equal(fuse_mean(np.dstack([ir] * 3), vis).fused, fuse_mean(ir, vis).fused)


class TestErrors:
    def test_unknown_name(self, pair) -> None:
        with pytest.raises(ValueError, match="unknown baseline"):
            fuse_baseline("wavelet", *pair)

    def test_size_mismatch(self, pair) -> None:
        ir, vis = pair
        with pytest.raises(ValueError, match="differ in size"):
            fuse_mean(ir[:10], vis)

    def test_dtype(self, pair) -> None:
        ir, vis = pair
        with pytest.raises(ValueError, match="uint8"):
            fuse_max(ir.astype(np.uint16), vis)

    def test_pyramid_too_deep(self) -> None:
        small = np.zeros((8, 8), np.uint8)
        with pytest.raises(ValueError, match="too small"):
            fuse_laplacian_pyramid(small, small, levels=4)
        with pytest.raises(ValueError, match="levels"):
            fuse_laplacian_pyramid(small, small, levels=0)


def test_gff_weights_follow_saliency() -> None:
    """A textured visible half and a textured infrared half: each side's base weight favours its source."""
    rng = np.random.default_rng(5)
    texture = rng.uniform(0, 255, (64, 128))
    flat = np.full((64, 128), 128.0)
    vis = np.where(np.arange(128)[None, :] < 64, texture, flat).astype(np.uint8)
    ir = np.where(np.arange(128)[None, :] >= 64, texture, flat).astype(np.uint8)
    weights = fuse_gff(ir, vis).weights
    assert weights[:, :20].mean() > 0.8 and weights[:, -20:].mean() < 0.2


def test_liu2017_weights_follow_the_detector_and_the_match_rule() -> None:
    """Sharp visible half / blurred infrared half and the reverse: the detector's map (the weights)
    favours the sharp side of each source, and the fused image keeps the sharp texture of both."""
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (96, 192)), (0, 0), 1.0)
    blurred = cv2.GaussianBlur(texture, (0, 0), 6.0)
    left = np.arange(192)[None, :] < 96
    vis = np.where(left, texture, blurred).astype(np.uint8)
    ir = np.where(left, blurred, texture).astype(np.uint8)
    result = fuse_liu2017(ir, vis)
    assert result.weights[:, 16:80].mean() > 0.7 and result.weights[:, 112:176].mean() < 0.3
    sharp = texture.astype(np.uint8)
    error = np.abs(result.fused.astype(float) - sharp)[8:-8, 8:-8]
    assert error.mean() < np.abs(((vis.astype(float) + ir) / 2) - sharp)[8:-8, 8:-8].mean() / 2


def test_hmsd_gf_keeps_a_warm_target() -> None:
    """A warm square on a flat thermal background over a textured visible scene stays bright."""
    rng = np.random.default_rng(8)
    vis = cv2.GaussianBlur(rng.uniform(40, 120, (96, 128)), (0, 0), 1.5).astype(np.uint8)
    ir = np.full((96, 128), 40, np.uint8)
    ir[40:56, 56:72] = 230
    fused = fuse_hmsd_gf(ir, vis).fused.astype(float)
    assert fused[42:54, 58:70].mean() > fused[:, :40].mean() + 80
