"""core.multiscale: the pyramid fusion of the default mode."""
from __future__ import annotations

import cv2
import numpy as np

from ivif_ros.core import multiscale

RNG = np.random.default_rng(21)


def _texture(height: int, width: int) -> np.ndarray:
    return cv2.GaussianBlur(RNG.uniform(0, 255, (height, width)), (0, 0), 1.2).astype(np.float32)


def test_identical_sources_are_reproduced() -> None:
    image = _texture(80, 100)
    fused, share = multiscale.pyramid_fuse(image, image, np.full_like(image, 0.3), base_complement=0.0)
    np.testing.assert_allclose(fused, image, atol=1e-2)
    assert share.min() >= 0.0 and share.max() <= 1.0


def test_detail_of_both_sources_and_the_share_that_took_it() -> None:
    texture = _texture(96, 192)
    flat = np.full_like(texture, 120.0)
    left = np.arange(192)[None, :] < 96
    visible = np.where(left, texture, flat).astype(np.float32)
    thermal = np.where(left, flat, texture).astype(np.float32)
    fused, share = multiscale.pyramid_fuse(visible, thermal, np.full_like(visible, 0.5))
    inner = (slice(16, -16), slice(16, 80)), (slice(16, -16), slice(112, 176))
    for region in inner:  # the texture survives on both halves (not averaged away to half contrast)
        assert fused[region].std() > 0.8 * texture[region].std()
    assert share[inner[0]].mean() > 0.7 and share[inner[1]].mean() < 0.3


def test_warm_target_stays_bright_over_a_busy_visible_scene() -> None:
    visible = _texture(96, 128) * 0.5 + 60
    thermal = np.full((96, 128), 40.0, np.float32)
    thermal[40:56, 56:72] = 230.0
    fused, _ = multiscale.pyramid_fuse(visible, thermal, np.full_like(visible, 0.5))
    target = fused[42:54, 58:70].mean()
    ring = np.concatenate([fused[30:38, 50:78].ravel(), fused[58:66, 50:78].ravel()]).mean()
    assert target - ring > 0.7 * (230.0 - 40.0)


def test_detector_weights_decide_where_the_bands_match() -> None:
    image = _texture(64, 64)
    brighter = image * 1.2  # same structure, different contrast: the bands match everywhere
    for weight, expected in ((1.0, brighter), (0.0, image)):
        fused, share = multiscale.pyramid_fuse(brighter, image, np.full_like(image, weight), base_complement=0.0,
                                               base_temperature=1000.0)
        detail = fused - cv2.GaussianBlur(fused, (0, 0), 4.0)
        expected_detail = expected - cv2.GaussianBlur(expected, (0, 0), 4.0)
        assert np.abs(detail - expected_detail)[8:-8, 8:-8].mean() < 0.1 * np.abs(expected_detail).mean()


def test_small_frames_use_fewer_levels() -> None:
    assert multiscale.usable_levels((16, 20), 4) == 2
    assert multiscale.usable_levels((512, 640), 4) == 4
    tiny = _texture(9, 11)
    fused, share = multiscale.pyramid_fuse(tiny, tiny, np.full_like(tiny, 0.5), base_complement=0.0)
    assert fused.shape == share.shape == tiny.shape


def test_detector_evidence_steers_the_selection_where_the_bands_disagree() -> None:
    visible, thermal = _texture(64, 64), _texture(64, 64)  # unrelated textures: the bands mostly disagree

    def share(weight: float, bias: float) -> np.ndarray:
        return multiscale.pyramid_fuse(visible, thermal, np.full_like(visible, weight), levels=2,
                                       selection_sharpness=4.0, selection_bias=bias, base_bias=0.0)[1]

    np.testing.assert_allclose(share(0.5, 0.5), share(0.5, 0.0), atol=1e-6)  # a flat map (log-odds 0) adds nothing
    assert share(0.05, 0.5).mean() < share(0.05, 0.0).mean() - 0.05  # evidence for the thermal bands
    assert share(0.95, 0.5).mean() > share(0.95, 0.0).mean() + 0.05  # evidence for the visible bands


def test_detector_evidence_shifts_the_base_selection() -> None:
    visible = np.full((64, 64), 100.0, np.float32)
    thermal = np.full((64, 64), 110.0, np.float32)  # slightly brighter: brightness alone prefers it
    levels = {}
    for weight in (0.02, 0.5, 0.98):
        fused, _ = multiscale.pyramid_fuse(visible, thermal, np.full_like(visible, weight), base_complement=0.0,
                                           base_bias=1.5)
        levels[weight] = float(fused.mean())
    brightness_only = 100.0 + 10.0 / (1.0 + np.exp(-1.0))  # sigmoid((110 − 100) / 10) of the thermal
    assert abs(levels[0.5] - brightness_only) < 0.1
    assert levels[0.02] > levels[0.5] + 1.0 and levels[0.98] < levels[0.5] - 3.0  # evidence for the visible


def test_detector_thread_beside_decomposition_changes_nothing(monkeypatch) -> None:
    """On the CPU the detector runs in its own thread while the pyramids are built; the fused
    frames and weight maps must be exactly those of the sequential order."""
    import threading

    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core.primitives.numpy_ops import NumpyOps
    from ivif_ros.core.synthetic import synthetic_pair

    frames = [synthetic_pair(96, 128, seed=3, t=k / 30) for k in range(4)]
    results, detector_threads = {}, set()
    for overlap in (False, True):
        monkeypatch.setattr(NumpyOps, "overlap_detection", overlap)
        pipeline = create_pipeline(stream=True)
        original = pipeline._detect

        def recording(*args, original=original, overlap=overlap):
            detector_threads.add((overlap, threading.current_thread().name))
            return original(*args)

        monkeypatch.setattr(pipeline, "_detect", recording)
        results[overlap] = [pipeline(thermal, visible) for thermal, visible in frames]
    assert {name for flag, name in detector_threads if flag} != {threading.current_thread().name}
    assert {name for flag, name in detector_threads if not flag} == {threading.current_thread().name}
    for sequential, overlapped in zip(results[False], results[True], strict=True):
        assert np.array_equal(sequential.fused, overlapped.fused)
        assert np.array_equal(sequential.weights, overlapped.weights)


def _fuse_in_child() -> float:
    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core.synthetic import synthetic_pair

    thermal, visible = synthetic_pair(64, 80, seed=5, t=0.0)
    return float(create_pipeline()(thermal, visible).fused.mean())


def test_forked_worker_fuses_after_the_parent_used_the_detector_thread() -> None:
    """A fork (multiprocessing workers, e.g. ivif-eval --workers) inherits the parent's detector
    executor but not its thread; the child must get its own instead of waiting forever."""
    import multiprocessing

    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core.synthetic import synthetic_pair

    thermal, visible = synthetic_pair(64, 80, seed=5, t=0.0)
    in_parent = float(create_pipeline()(thermal, visible).fused.mean())  # the parent's thread now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        in_child = pool.apply_async(_fuse_in_child).get(timeout=120)  # a hang fails here, not a speed check
    assert in_child == in_parent
