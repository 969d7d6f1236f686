import numpy as np
import pytest

from ivif_ros.core.guided_filter import fast_guided_filter


def _step(height=64, width=64):
    image = np.zeros((height, width), np.float32)
    image[:, width // 2:] = 1.0
    return image


class TestFastGuidedFilter:
    def test_constant_source_stays_constant(self):
        guide = np.random.default_rng(0).random((40, 50)).astype(np.float32)
        out = fast_guided_filter(guide, np.full_like(guide, 0.3), radius=4, eps=1e-3)
        np.testing.assert_allclose(out, 0.3, atol=1e-5)

    def test_self_guided_small_eps_keeps_edges(self):
        step = _step()
        out = fast_guided_filter(step, step, radius=6, eps=1e-4)
        assert out[:, 20].max() < 0.05 and out[:, 44].min() > 0.95
        assert abs(out[10, 31] - 0.0) < 0.05 and abs(out[10, 32] - 1.0) < 0.05

    def test_large_eps_behaves_like_box_smoothing(self):
        step = _step()
        out = fast_guided_filter(step, step, radius=6, eps=1e3)
        assert 0.2 < out[10, 31] < 0.8  # edge blurred

    def test_subsampled_close_to_full(self):
        rng = np.random.default_rng(1)
        guide = np.clip(_step(128, 128) + 0.05 * rng.standard_normal((128, 128)), 0, 1).astype(np.float32)
        full = fast_guided_filter(guide, guide, radius=8, eps=1e-2, subsample=1)
        fast = fast_guided_filter(guide, guide, radius=8, eps=1e-2, subsample=4)
        assert np.abs(full - fast).mean() < 0.02

    def test_non_contiguous_input(self):
        guide = np.random.default_rng(2).random((60, 80)).astype(np.float32)
        out_view = fast_guided_filter(guide[:, ::2], guide[:, ::2], radius=3, eps=1e-2)
        out_copy = fast_guided_filter(guide[:, ::2].copy(), guide[:, ::2].copy(), radius=3, eps=1e-2)
        np.testing.assert_allclose(out_view, out_copy, atol=1e-6)

    @pytest.mark.parametrize(
        "kwargs", [dict(radius=0, eps=1e-2), dict(radius=2, eps=0.0), dict(radius=2, eps=1e-2, subsample=0)]
    )
    def test_bad_parameters(self, kwargs):
        image = np.zeros((10, 10), np.float32)
        with pytest.raises(ValueError):
            fast_guided_filter(image, image, **kwargs)

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="equal 2-D shapes"):
            fast_guided_filter(np.zeros((10, 10), np.float32), np.zeros((10, 11), np.float32), 2, 1e-2)
