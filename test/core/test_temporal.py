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

    def test_thermal_curve_anchors_to_the_smoothed_stretched_quantiles(self) -> None:
        normaliser = StreamNormaliser(smoothing=0.75, scene_cut=30.0)
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        knots = [0.0, 1.0, 5.0, 20.0, 50.0, 100.0, 150.0, 200.0, 240.0, 250.0, 255.0]
        source, target = normaliser.thermal_curve(knots, 1.0, 250.0)  # first frame: its own linear stretch
        np.testing.assert_allclose(source, knots)
        np.testing.assert_allclose(target, np.clip((np.array(knots) - 1.0) * 255.0 / 249.0, 0, 255))
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        agc = [k * 0.5 for k in knots]  # the camera halved its gain: same scene, same stretched knots
        source, second = normaliser.thermal_curve(agc, 0.5, 125.0)
        np.testing.assert_allclose(source, agc)
        np.testing.assert_allclose(second, target)
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        _, third = normaliser.thermal_curve(knots, 0.0, 510.0)  # a real change: followed by a quarter
        np.testing.assert_allclose(third, 0.75 * target + 0.25 * np.array(knots) / 2.0)
        normaliser.begin_frame(np.full((8, 8), 200.0, np.float32))  # scene cut: history dropped
        _, fresh = normaliser.thermal_curve(knots, 0.0, 510.0)
        np.testing.assert_allclose(fresh, np.array(knots) / 2.0)

    def test_curve_knots_are_made_increasing(self) -> None:
        normaliser = StreamNormaliser(smoothing=0.5, scene_cut=30.0)
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        source, target = normaliser.thermal_curve([0.0] * 5 + [255.0] * 6, 0.0, 255.0)  # a two-level image
        assert (np.diff(source) > 0).all() and (np.diff(target) >= 0).all()

    def test_output_tone_range_is_capped_by_the_inputs(self) -> None:
        normaliser = StreamNormaliser(smoothing=0.8, scene_cut=30.0)
        normaliser.begin_frame(np.zeros((8, 8), np.float32))
        narrow = [40.0, 50.0, 60.0, 80.0, 100.0, 120.0, 140.0, 160.0, 180.0, 210.0, 220.0]  # 0.5-99.5 %: 160
        normaliser.thermal_curve(narrow, 0.0, 255.0)
        wide = [0.0, 10.0, 20.0, 30.0, 60.0, 128.0, 190.0, 240.0, 250.0, 260.0, 280.0]
        bounds, source, target = normaliser.output_tone((10.0, 260.0), wide, (60.0, 90.0))
        assert bounds == (10.0, 260.0)
        np.testing.assert_allclose(source[1:-1], (np.array(wide[1:-1]) - 10.0) * 255.0 / 250.0, atol=0.01)
        assert target[9] - target[1] == pytest.approx(160.0)  # the thermal's range, larger than the visible's
        assert target[5] == pytest.approx(source[5])  # compressed about the median

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
    fresh = FusionPipeline(FusionConfig(), stills._detector("default"), stream=True)
    np.testing.assert_array_equal(stream(ir_b, vis_b).fused, fresh(ir_b, vis_b).fused)  # no history kept


def test_stills_are_independent_of_order(pipelines) -> None:
    _, stills = pipelines
    ir_a, vis_a = synthetic_pair(64, 80, seed=8)
    ir_b, vis_b = synthetic_pair(64, 80, seed=9)
    first = stills(ir_b, vis_b).fused
    stills(ir_a, vis_a)
    np.testing.assert_array_equal(stills(ir_b, vis_b).fused, first)


def test_thermal_agc_curves_do_not_make_a_static_scene_flicker(pipelines) -> None:
    """Static scene; the thermal camera's AGC applies a different nonlinear curve (gamma and offset)
    to every frame, as LLVIP's camera does: the stream's anchored tone curves keep the fused frames
    nearly constant, where stills follow every curve."""
    stream, stills = pipelines
    stream.reset_stream()
    ir, vis = synthetic_pair(96, 128, seed=11, color=True)
    scene = np.clip(ir - 40.0 + np.linspace(0.0, 80.0, 128)[None, :], 0, 255) / 255.0  # a broad histogram
    rng = np.random.default_rng(3)
    outputs = {"stream": [], "stills": [], "thermal": []}
    for _ in range(16):
        gamma, offset = rng.uniform(0.5, 1.8), rng.uniform(0.0, 60.0)
        frame = (offset + (255.0 - offset) * scene**gamma).astype(np.uint8)
        outputs["thermal"].append(frame.astype(np.float64))
        for name, pipeline in (("stream", stream), ("stills", stills)):
            outputs[name].append(_luma(pipeline(frame, vis).fused))
    change = {name: np.mean([np.abs(b - a).mean() for a, b in zip(frames[4:-1], frames[5:], strict=True)])
              for name, frames in outputs.items()}
    assert change["stream"] < 0.3 * change["stills"], change
    assert change["stream"] < 0.1 * change["thermal"], change


def test_stream_output_is_no_more_contrasted_than_its_inputs(pipelines) -> None:
    """Stills stretch the fused frame over 0..255; a stream's output keeps to the larger tone range
    (0.5–99.5 %) of its inputs as the fusion sees them."""
    stream, stills = pipelines
    stream.reset_stream()
    ir, vis = synthetic_pair(96, 128, seed=12, color=False)
    vis = (64 + vis * 0.25).astype(np.uint8)  # a flat visible
    ir = (90 + ir * 0.4).astype(np.uint8)
    ir[0, :3], ir[-1, -3:] = 0, 255  # a few dead/hot pixels: the min-max stretch keeps the rest narrow
    for _ in range(3):
        fused = stream(ir, vis).fused.astype(np.float64)

    def tone_range(image: np.ndarray) -> float:
        return float(np.subtract(*np.percentile(image, [99.5, 0.5])))

    inputs = max(tone_range(ir), tone_range(vis))  # the thermal's min-max stretch is 0..255 already
    assert tone_range(fused) <= 1.05 * inputs < 0.9 * tone_range(stills(ir, vis).fused)


def test_no_smoothing_streams_like_stills(pipelines) -> None:
    _, stills = pipelines
    per_frame = FusionPipeline(FusionConfig(temporal_smoothing=0.0), stills._detector("default"), stream=True)
    for seed in (13, 14):
        ir, vis = synthetic_pair(64, 80, seed=seed)
        np.testing.assert_array_equal(per_frame(ir, vis).fused, stills(ir, vis).fused)
