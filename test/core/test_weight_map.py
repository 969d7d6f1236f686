import numpy as np
import pytest

from ivif_ros.core.weight_map import accumulate_windows, refine_weights, seed_weight_map, soft_weight_map


def _naive_accumulate(values, window, stride, shape):
    out = np.zeros(shape, np.float64)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            out[i * stride:i * stride + window, j * stride:j * stride + window] += values[i, j]
    return out


@pytest.mark.parametrize(
    "shape,window,stride", [((64, 64), 32, 8), ((72, 100), 32, 4), ((40, 33), 32, 8), ((50, 90), 16, 16)]
)
def test_accumulate_windows_matches_naive_loop(shape, window, stride):
    nh, nw = (shape[0] - window) // stride + 1, (shape[1] - window) // stride + 1
    values = np.random.default_rng(0).standard_normal((nh, nw)).astype(np.float32)
    fast = accumulate_windows(values, window, stride, shape)
    naive = _naive_accumulate(values, window, stride, shape)
    covered_h, covered_w = (nh - 1) * stride + window, (nw - 1) * stride + window
    np.testing.assert_allclose(fast[:covered_h, :covered_w], naive[:covered_h, :covered_w], atol=1e-4)
    assert fast.shape == shape


def test_accumulate_rejects_non_multiple_window():
    with pytest.raises(ValueError):
        accumulate_windows(np.zeros((2, 2), np.float32), 32, 5, (40, 40))


def test_soft_weights_constant_scores_give_constant_map():
    weights = soft_weight_map(np.full((5, 7), 2.0, np.float32), 32, 8, (64, 80))
    np.testing.assert_allclose(weights, 1 / (1 + np.exp(-2.0)), atol=1e-6)


def _left_right_scores(shape=(96, 128), window=32, stride=8):
    nh, nw = (shape[0] - window) // stride + 1, (shape[1] - window) // stride + 1
    scores = np.full((nh, nw), -3.0, np.float32)
    scores[:, : nw // 2] = 3.0  # windows on the left: visible sharper
    return scores


def test_seed_weights_decision_and_blend():
    shape = (96, 128)
    weights = seed_weight_map(_left_right_scores(shape), 32, 8, shape, blend_radius=8)
    assert weights.min() >= 0 and weights.max() <= 1
    assert (weights[:, :30] == 1.0).all() and (weights[:, -30:] == 0.0).all()
    row = weights[48]
    assert np.all(np.diff(row) <= 1e-6)  # monotone transition, no seam
    assert ((row > 0.05) & (row < 0.95)).sum() >= 8  # a blend band, not a hard cut


def test_seed_weights_all_one_source():
    weights = seed_weight_map(np.ones((3, 3), np.float32), 32, 8, (48, 48))
    np.testing.assert_array_equal(weights, 1.0)


def test_refine_follows_guide_edges():
    guide = np.zeros((64, 64), np.float32)
    guide[:, 32:] = 255.0
    coarse = np.clip((np.arange(64) - 16) / 32.0, 0, 1)[None].repeat(64, 0).astype(np.float32)
    refined = refine_weights(coarse, guide, radius=8, eps=1e-4)
    # within each flat guide region the weights flatten, the change concentrates at the guide edge
    assert refined[:, 40:].std() < coarse[:, 40:].std()
    assert refined.min() >= 0 and refined.max() <= 1
    np.testing.assert_array_equal(refine_weights(coarse, guide, radius=0, eps=1e-3), coarse)
