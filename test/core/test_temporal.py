"""Stream mode: temporally smoothed normalisation (core.temporal + FusionPipeline(stream=True))."""
from __future__ import annotations

import numpy as np
import pytest

from ivif_ros.backends.choice import DetectorChoice, create_pipeline
from ivif_ros.core.pipeline import FusionConfig, FusionPipeline
from ivif_ros.core.synthetic import synthetic_pair
from ivif_ros.core.temporal import StreamNormaliser


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) if image.ndim == 2 else image.astype(np.float64).mean(axis=2)


@pytest.fixture(scope="module")
def pipelines():
    stream = create_pipeline(FusionConfig(), DetectorChoice(backend="onnxruntime", device="cpu"), stream=True)
    stills = FusionPipeline(FusionConfig(), stream._detector("default"), stream=False)
    return stream, stills


class TestStreamNormaliser:
    def test_moving_average_and_restart_on_size_change(self) -> None:
        normaliser = StreamNormaliser(smoothing=0.75, scene_cut=30.0)
        frame = np.full((24, 32), 100.0, np.float32)
        assert normaliser.begin_frame(frame)
        assert normaliser.smooth("x", 0.0, 100.0) == (0.0, 100.0)
        assert not normaliser.begin_frame(frame)
        assert normaliser.smooth("x", 10.0, 110.0) == pytest.approx((2.5, 102.5))
        assert normaliser.begin_frame(np.full((48, 64), 100.0, np.float32))  # new size: history dropped
        assert normaliser.smooth("x", 10.0, 110.0) == (10.0, 110.0)

    def test_scene_cut_restarts(self) -> None:
        normaliser = StreamNormaliser(smoothing=0.9, scene_cut=30.0)
        normaliser.begin_frame(np.full((24, 32), 20.0, np.float32))
        normaliser.smooth("x", 0.0, 100.0)
        assert normaliser.begin_frame(np.full((24, 32), 200.0, np.float32))  # the view changed
        assert normaliser.cuts == 1
        assert normaliser.smooth("x", 50.0, 80.0) == (50.0, 80.0)
        assert not normaliser.begin_frame(np.full((24, 32), 205.0, np.float32))
        assert normaliser.smooth("x", 60.0, 90.0) == pytest.approx((51.0, 81.0))

    def test_no_smoothing_passes_bounds_through(self) -> None:
        normaliser = StreamNormaliser(smoothing=0.0, scene_cut=30.0)
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        normaliser.smooth("x", 0.0, 10.0)
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        assert normaliser.smooth("x", 1.0, 11.0) == (1.0, 11.0)


def test_thermal_gain_drift_does_not_make_the_fused_mean_jump(pipelines) -> None:
    """Static scene, 16-bit thermal whose gain drifts by 20 % over 60 frames."""
    stream, _ = pipelines
    stream.reset_stream()
    ir, vis = synthetic_pair(96, 128, seed=4, color=True, thermal_bits=16)
    offset = float(np.percentile(ir, 1))
    fused_means, thermal_means = [], []
    for index in range(60):
        gain = 1.0 + 0.2 * index / 59
        frame = np.clip(offset + (ir.astype(np.float64) - offset) * gain, 0, 65535).astype(np.uint16)
        fused_means.append(_luma(stream(frame, vis).fused).mean())
        thermal_means.append(frame.astype(np.float64).mean())
    thermal_scale = 255.0 / (np.percentile(ir, 99.5) - np.percentile(ir, 0.5))
    drift_per_frame = np.abs(np.diff(thermal_means)).max() * thermal_scale  # grey levels of the first frame's stretch
    jumps = np.abs(np.diff(fused_means))
    assert jumps.max() <= drift_per_frame, (jumps.max(), drift_per_frame)
    assert abs(fused_means[-1] - fused_means[0]) <= 0.2 * np.mean(thermal_means) * thermal_scale


def test_stream_mode_damps_a_flickering_hot_spot(pipelines) -> None:
    """A small very hot object blinks in a corner: per-frame min-max rescales the whole thermal
    image each time, stream mode keeps the background steady."""
    stream, stills = pipelines
    stream.reset_stream()
    ir, vis = synthetic_pair(96, 128, seed=5, color=False)
    ir = (ir.astype(np.float64) * 0.6).astype(np.uint8)
    changes = {"stream": [], "stills": []}
    previous = {}
    for index in range(12):
        frame = ir.copy()
        if index % 2:
            frame[:6, :6] = 255
        for name, pipeline in (("stream", stream), ("stills", stills)):
            fused = _luma(pipeline(frame, vis).fused)[20:, 20:]
            if name in previous:
                changes[name].append(np.abs(fused - previous[name]).mean())
            previous[name] = fused
    assert np.mean(changes["stream"][3:]) < 0.5 * np.mean(changes["stills"][3:])


def test_scene_cut_restarts_the_normalisation(pipelines) -> None:
    stream, stills = pipelines
    stream.reset_stream()
    ir_a, vis_a = synthetic_pair(96, 128, seed=6)
    for _ in range(3):
        stream(ir_a, vis_a)
    ir_b, vis_b = synthetic_pair(96, 128, seed=7)
    vis_b = 255 - vis_b  # a different view: the visible thumbnail changes by far more than scene_cut
    np.testing.assert_array_equal(stream(ir_b, vis_b).fused, stills(ir_b, vis_b).fused)


def test_stills_are_independent_of_order(pipelines) -> None:
    _, stills = pipelines
    ir_a, vis_a = synthetic_pair(64, 80, seed=8)
    ir_b, vis_b = synthetic_pair(64, 80, seed=9)
    first = stills(ir_b, vis_b).fused
    stills(ir_a, vis_a)
    np.testing.assert_array_equal(stills(ir_b, vis_b).fused, first)
