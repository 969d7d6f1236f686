"""Seed mode's decision, blending and Retinex against direct per-pixel transcriptions of Model_Test.py's steps."""
import cv2
import numpy as np
import pytest

from ivif_ros.core import seed_mode


def _brute_edt(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest zero pixel, by exhaustive search."""
    zeros = np.argwhere(mask == 0)
    out = np.zeros(mask.shape)
    for (r, c) in np.argwhere(mask != 0):
        out[r, c] = np.sqrt(((zeros - (r, c)) ** 2).sum(axis=1)).min()
    return out


def test_decision_map_accumulates_votes_like_the_window_loop():
    rng = np.random.default_rng(0)
    window, stride, shape = 8, 4, (22, 27)  # the last rows/columns are covered by no window
    nh, nw = (shape[0] - window) // stride + 1, (shape[1] - window) // stride + 1
    votes = rng.choice([-1.0, 1.0], size=(nh, nw), p=[0.6, 0.4])
    votes[0, 0] = 0.0  # a zero counts as a vote for visible
    total = np.zeros(shape)
    for i in range(nh):
        for j in range(nw):
            total[i * stride:i * stride + window, j * stride:j * stride + window] += 1 if votes[i, j] >= 0 else -1
    expected = np.where(total < 0, 0, 1)  # map1 < 0 -> infrared, else visible (uncovered pixels: visible)
    got = seed_mode.decision_map(votes, window, stride, shape)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)
    assert (got == 0).any() and (got[-1, :] == 1).all()


def test_distance_to_zero_is_euclidean():
    rng = np.random.default_rng(1)
    mask = (rng.random((17, 23)) > 0.08).astype(np.uint8)
    np.testing.assert_allclose(seed_mode.distance_to_zero(mask), _brute_edt(mask), atol=1e-3)


def test_blend_follows_the_authors_formula():
    rng = np.random.default_rng(2)
    vis = rng.integers(0, 256, (19, 21)).astype(np.float64)
    ir = rng.integers(0, 256, (19, 21)).astype(np.float64)
    vis[3, 4] = 0.0  # F0 has zero pixels, so d is finite
    g = np.zeros((19, 21), np.uint8)
    g[:, 8:] = 1
    g[12:, 15:] = 0
    w3, w4 = _brute_edt(g), _brute_edt(1 - g)
    direct = np.where(g == 1, vis, ir).astype(np.uint8)
    d = _brute_edt(direct)
    expected = (d * ir + d * vis + w4 * ir + w3 * vis) / (d + d + w3 + w4)
    fused, share = seed_mode.blend(vis, ir, g)
    np.testing.assert_allclose(fused, expected, rtol=1e-4)
    np.testing.assert_allclose(share * vis + (1 - share) * ir, expected, rtol=1e-4)


def test_blend_without_zero_pixels_is_the_mean_inside_regions():
    """No zero pixel in F0: d is unbounded, so F tends to (I + V) / 2 wherever w3, w4 stay finite."""
    vis = np.full((16, 16), 200.0)
    ir = np.full((16, 16), 40.0)
    g = np.zeros((16, 16), np.uint8)
    g[:, 8:] = 1
    fused, share = seed_mode.blend(vis, ir, g)
    np.testing.assert_allclose(fused, 120.0, rtol=1e-6)
    np.testing.assert_allclose(share, 0.5, rtol=1e-6)


def _script_ssr(img: np.ndarray, sigma: float) -> np.ndarray:
    """SSR written step by step as the research script's loops run (one channel)."""
    img = img.astype(np.float64) + 1.0
    r = np.log10(img) - np.log10(cv2.GaussianBlur(img, (0, 0), sigma))
    unique, count = np.unique(np.int32(r * 100), return_counts=True)
    zero_count = 0
    for u, c in zip(unique, count, strict=True):
        if u == 0:
            zero_count = c
            break
    low, high = unique[0] / 100.0, unique[-1] / 100.0
    for u, c in zip(unique, count, strict=True):
        if u < 0 and c < zero_count * 0.1:
            low = u / 100.0
        if u > 0 and c < zero_count * 0.1:
            high = u / 100.0
            break
    r = np.maximum(np.minimum(r, high), low)
    return np.uint8((r - r.min()) / (r.max() - r.min()) * 255)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssr_matches_the_script(seed):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.uniform(0, 255, (6, 7)), (70, 60), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    got = seed_mode.authors_ssr(img, sigma=12.0)
    assert got.dtype == np.uint8 and got.max() == 255
    np.testing.assert_array_equal(got, _script_ssr(img, 12.0))


def test_fuse_picks_the_source_deep_inside_decided_regions():
    vis = np.full((64, 64), 180.0)
    ir = np.full((64, 64), 30.0)
    ir[0, 0] = 0.0  # gives F0 a zero pixel where the infrared is chosen
    votes = np.ones((7, 7))
    votes[:, :2] = -1.0  # windows on the left vote infrared
    fused, share = seed_mode.fuse(vis, ir, votes, 32, 8, retinex=False)
    assert fused.shape == share.shape == (64, 64) and fused.dtype == np.float32
    assert share[:, 0].max() < share[:, -1].min()  # more visible on the right
    assert fused[:, -1].mean() > fused[:, 0].mean()
    assert fused.min() == 0.0 and fused.max() == 255.0  # min-max to 0..255
    assert np.array_equal(fused, np.floor(fused))  # truncated to integers like np.uint8(FUSED)


def test_original_infrared_keeps_8_bit_values_and_scales_16_bit():
    ir8 = np.array([[10, 20], [30, 40]], np.uint8)
    np.testing.assert_array_equal(seed_mode.original_infrared(ir8), ir8.astype(np.float32))
    ir16 = np.array([[1000, 2000], [3000, 5000]], np.uint16)
    out = seed_mode.original_infrared(ir16)
    assert out.min() == 0.0 and out.max() == 255.0


@pytest.fixture(scope="module")
def random_seed_weights(tmp_path_factory):
    import torch

    from ivif_ros.models import create_model, save_model

    torch.manual_seed(0)
    return save_model(create_model("seed"), tmp_path_factory.mktemp("w") / "seed_random.safetensors", "seed")


def test_pipeline_seed_blend_options(random_seed_weights):
    from ivif_ros.backends.choice import DetectorChoice, create_pipeline
    from ivif_ros.core import FusionConfig
    from ivif_ros.core.synthetic import synthetic_pair

    ir, vis = synthetic_pair(64, 64, seed=3, color=False)
    outputs = {}
    choice = DetectorChoice(backend="torch", device="cpu", seed_model=str(random_seed_weights))
    for blend in ("authors", "ramp"):
        pipeline = create_pipeline(FusionConfig(mode="seed", seed_stride=16, seed_blend=blend), choice)
        result = pipeline(ir, vis)
        assert result.fused.shape == (64, 64) and result.fused.dtype == np.uint8
        assert result.weights.min() >= 0.0 and result.weights.max() <= 1.0
        outputs[blend] = result.fused
    assert not np.array_equal(outputs["authors"], outputs["ramp"])
    with pytest.raises(ValueError, match="seed_blend"):
        FusionConfig(seed_blend="feather").validate()
    assert pipeline._detector("seed").model_info.arch == "seed"
