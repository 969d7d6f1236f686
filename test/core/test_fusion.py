import cv2
import numpy as np
import pytest

from ivif_ros.core.fusion import blend, merge_luminance, single_scale_retinex, to_luminance, two_scale_fuse


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((64, 80)) * 255).astype(np.float32), (rng.random((64, 80)) * 255).astype(np.float32)


def test_blend_extremes():
    vis, ir = _pair()
    np.testing.assert_allclose(blend(vis, ir, np.ones_like(vis)), vis, atol=1e-3)
    np.testing.assert_allclose(blend(vis, ir, np.zeros_like(vis)), ir)


@pytest.mark.parametrize("rule", ["max", "weighted"])
def test_two_scale_identical_inputs_return_input(rule):
    vis, _ = _pair()
    weights = np.random.default_rng(1).random(vis.shape).astype(np.float32)
    np.testing.assert_allclose(two_scale_fuse(vis, vis, weights, base_radius=4, detail_rule=rule), vis, atol=1e-3)


def test_two_scale_keeps_detail_of_both_sources():
    vis = np.full((64, 64), 100.0, np.float32)
    ir = np.full((64, 64), 100.0, np.float32)
    vis[20, :] = 200.0  # a line only the visible sees
    ir[:, 40] = 10.0    # a line only the infrared sees
    fused = two_scale_fuse(vis, ir, np.full_like(vis, 0.5), base_radius=6)
    assert fused[20, 10] - fused[30, 10] > 60
    assert fused[30, 30] - fused[30, 40] > 60


def test_two_scale_rejects_unknown_rule():
    vis, ir = _pair()
    with pytest.raises(ValueError):
        two_scale_fuse(vis, ir, np.ones_like(vis), detail_rule="min")


def test_single_scale_retinex_range_and_flat_input():
    vis, _ = _pair()
    out = single_scale_retinex(vis, sigma=30)
    assert out.min() >= 0 and out.max() <= 255 and out.max() > 200
    assert (single_scale_retinex(np.full((40, 40), 50.0, np.float32)) == 0).all()


def test_luminance_round_trip_keeps_colour():
    rng = np.random.default_rng(2)
    bgr = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    merged = merge_luminance(bgr, to_luminance(bgr))
    assert np.abs(merged.astype(int) - bgr.astype(int)).max() <= 3
    brighter = merge_luminance(bgr, np.clip(to_luminance(bgr) + 30, 0, 255))
    ycrcb_in, ycrcb_out = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb), cv2.cvtColor(brighter, cv2.COLOR_BGR2YCrCb)
    assert np.abs(ycrcb_in[..., 1:].astype(int) - ycrcb_out[..., 1:].astype(int)).mean() < 3  # chroma kept
