import cv2
import numpy as np

from ivif_ros.core.fusion import (
    blend,
    detail_energy_weights,
    merge_luminance,
    percentile_stretch,
    saliency_detail_fuse,
    single_scale_retinex,
    split_base_detail,
    to_ycrcb,
)


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((64, 80)) * 255).astype(np.float32), (rng.random((64, 80)) * 255).astype(np.float32)


def test_blend_extremes():
    vis, ir = _pair()
    np.testing.assert_allclose(blend(vis, ir, np.ones_like(vis)), vis, atol=1e-3)
    np.testing.assert_allclose(blend(vis, ir, np.zeros_like(vis)), ir)


def _layers(image, radius=6):
    return split_base_detail(image, radius)


def test_split_base_detail_sums_to_image():
    vis, _ = _pair()
    base, detail = split_base_detail(vis, 5)
    np.testing.assert_allclose(base + detail, vis, atol=1e-3)
    assert abs(float(detail.mean())) < 2.0


def test_saliency_fuse_identical_inputs_keep_structure():
    vis, _ = _pair()
    fused = saliency_detail_fuse(_layers(vis), _layers(vis), np.full_like(vis, 0.5), base_complement=0.0)
    np.testing.assert_allclose(fused, vis, atol=1e-2)


def test_saliency_fuse_keeps_bright_base_and_detail_of_both_sources():
    vis = np.full((64, 64), 60.0, np.float32)
    ir = np.full((64, 64), 60.0, np.float32)
    ir[20:44, 20:44] = 200.0  # a warm target only the infrared sees
    vis[10, :] = 160.0        # a line only the visible sees
    weights = detail_energy_weights(_layers(vis)[1], _layers(ir)[1])
    fused = saliency_detail_fuse(_layers(vis), _layers(ir), weights, base_complement=0.0)
    assert fused[32, 32] > 150  # the warm target survives
    assert fused[10, 50] - fused[14, 50] > 60  # the visible line survives


def test_detail_energy_weights_prefer_textured_source_and_are_smooth():
    rng = np.random.default_rng(3)
    textured = rng.normal(0, 20, (64, 64)).astype(np.float32)
    flat = rng.normal(0, 0.5, (64, 64)).astype(np.float32)
    weights = detail_energy_weights(textured, flat)
    assert weights.mean() > 0.95 and detail_energy_weights(flat, textured).mean() < 0.05
    mixed = np.where(np.arange(64)[None] < 32, textured, flat)
    row = detail_energy_weights(mixed, np.where(np.arange(64)[None] < 32, flat, textured))[32]
    assert row[:28].min() > 0.9 and row[36:].max() < 0.1 and 0.05 < row[32] < 0.95


def test_percentile_stretch():
    ramp = np.linspace(50, 150, 10000, dtype=np.float32).reshape(100, 100)
    out = percentile_stretch(ramp, 1.0)
    assert out.min() == 0.0 and out.max() == 255.0 and (out == 0).mean() < 0.03
    np.testing.assert_allclose(percentile_stretch(ramp, 0.0), ramp)
    np.testing.assert_allclose(percentile_stretch(np.full((8, 8), 300.0, np.float32), 1.0), 255.0)


def test_single_scale_retinex_range_and_flat_input():
    vis, _ = _pair()
    out = single_scale_retinex(vis, sigma=30)
    assert out.min() >= 0 and out.max() <= 255 and out.max() > 200
    assert (single_scale_retinex(np.full((40, 40), 50.0, np.float32)) == 0).all()


def test_luminance_round_trip_keeps_colour():
    rng = np.random.default_rng(2)
    bgr = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    luminance = to_ycrcb(bgr)[:, :, 0].astype(np.float32)
    merged = merge_luminance(bgr, luminance)
    assert np.abs(merged.astype(int) - bgr.astype(int)).max() <= 3
    np.testing.assert_array_equal(merge_luminance(bgr, luminance, to_ycrcb(bgr)), merged)  # reused YCrCb
    brighter = merge_luminance(bgr, np.clip(luminance + 30, 0, 255))
    ycrcb_in, ycrcb_out = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb), cv2.cvtColor(brighter, cv2.COLOR_BGR2YCrCb)
    assert np.abs(ycrcb_in[..., 1:].astype(int) - ycrcb_out[..., 1:].astype(int)).mean() < 3  # chroma kept
