import dataclasses

import numpy as np
import pytest

from ivif_ros.backends.choice import DetectorChoice, create_pipeline
from ivif_ros.core import RUNTIME_FIELDS, FusionConfig, FusionInputError, FusionPipeline
from ivif_ros.core.pipeline import detector_input_size
from ivif_ros.core.synthetic import synthetic_pair

TORCH_CPU = DetectorChoice(backend="torch", device="cpu")


@pytest.fixture(scope="module")
def pipeline():
    return create_pipeline(FusionConfig(), TORCH_CPU)


class TestOutputs:
    def test_colour_pair(self, pipeline):
        ir, vis = synthetic_pair(120, 160, seed=1)
        result = pipeline(ir, vis)
        assert result.fused.shape == (120, 160, 3) and result.fused.dtype == np.uint8
        assert result.weights.shape == (120, 160) and result.weights.dtype == np.float32
        assert result.weights.min() >= 0.0 and result.weights.max() <= 1.0
        assert result.weights_u8().dtype == np.uint8 and result.weights_colored().shape == (120, 160, 3)
        assert set(result.timings) == {"prepare", "enhance", "detect", "weights", "fuse"}

    def test_gray_visible_gives_gray_output(self, pipeline):
        ir, vis = synthetic_pair(96, 128, color=False)
        assert pipeline(ir, vis).fused.shape == (96, 128)

    def test_16bit_thermal(self, pipeline):
        ir, vis = synthetic_pair(96, 128, thermal_bits=16)
        assert ir.dtype == np.uint16
        result = pipeline(ir, vis)
        assert result.fused.shape == (96, 128, 3) and not result.warnings

    def test_fused_differs_from_both_inputs_and_follows_weights(self, pipeline):
        ir, vis = synthetic_pair(128, 160, seed=4)
        result = pipeline(ir, vis)
        gray = result.fused.mean(axis=2)
        assert np.abs(gray - vis.mean(axis=2)).mean() > 1.0
        assert np.abs(gray - ir).mean() > 1.0

    def test_detector_weights_are_smooth(self):
        # The two-scale scheme returns the refined detector map (the pyramid scheme returns the
        # effective per-level share, which switches where the bands disagree).
        detector_only = create_pipeline(FusionConfig(fusion_scheme="two_scale", detector_mix=1.0), TORCH_CPU)
        ir, vis = synthetic_pair(256, 320, seed=2)
        weights = detector_only(ir, vis).weights
        assert np.abs(np.diff(weights, axis=0)).max() < 0.2
        assert np.abs(np.diff(weights, axis=1)).max() < 0.2

    def test_no_seams_on_smooth_inputs(self, pipeline):
        # Smooth sources (no edges) with different content: any step in the output is a seam.
        yy, xx = np.mgrid[0:192, 0:256].astype(np.float32)
        vis = (60 + 120 * (xx / 255) + 20 * np.sin(yy / 30)).astype(np.uint8)
        ir = (40 + 150 * np.exp(-((xx - 170) ** 2 + (yy - 96) ** 2) / 2000.0)).astype(np.uint8)
        fused = pipeline(ir, vis).fused.astype(np.float32)
        source_step = max(np.abs(np.diff(x.astype(np.float32), axis=a)).max() for x in (vis, ir) for a in (0, 1))
        fused_step = max(np.abs(np.diff(fused, axis=a)).max() for a in (0, 1))
        assert fused_step <= 4 * source_step + 2  # only the final contrast stretch may steepen
        # control: a hard decision map (the seed's decision without blending) does make a seam
        hard = np.where(xx < 128, vis.astype(np.float32), ir.astype(np.float32))
        assert max(np.abs(np.diff(hard, axis=a)).max() for a in (0, 1)) > 4 * source_step + 2

    def test_three_channel_gray_thermal_is_collapsed(self, pipeline):
        ir, vis = synthetic_pair(96, 128)
        single = pipeline(ir, vis).fused
        triple = pipeline(np.dstack([ir, ir, ir]), vis).fused
        np.testing.assert_array_equal(single, triple)

    def test_small_image_still_fused(self, pipeline):
        ir, vis = synthetic_pair(20, 24)
        assert pipeline(ir, vis).fused.shape == (20, 24, 3)


class TestBadInput:
    @pytest.mark.parametrize(
        "ir,vis,match",
        [
            (np.zeros((0, 0), np.uint8), np.zeros((10, 10), np.uint8), "non-empty"),
            (np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8), "too small"),
            (np.full((32, 32), np.nan, np.float32), np.zeros((32, 32), np.uint8), "NaN"),
            (np.zeros((32, 32), np.uint8), np.full((32, 32), 3.0, np.float32), r"\[0, 1\]"),
            (np.zeros((32, 64), np.uint8), np.zeros((32, 32), np.uint8), "aspect ratio"),
            (np.zeros((32, 32), np.int32), np.zeros((32, 32), np.uint8), "dtype"),
            (np.zeros((32, 32, 5), np.uint8), np.zeros((32, 32), np.uint8), "channels"),
            ([[1, 2]], np.zeros((32, 32), np.uint8), "numpy array"),
        ],
    )
    def test_clear_errors(self, pipeline, ir, vis, match):
        with pytest.raises(FusionInputError, match=match):
            pipeline(ir, vis)

    def test_huge_image_refused(self):
        small = create_pipeline(FusionConfig(max_pixels=64 * 64), TORCH_CPU)
        with pytest.raises(FusionInputError, match="max_pixels"):
            small(np.zeros((100, 100), np.uint8), np.zeros((100, 100), np.uint8))

    def test_same_aspect_is_resized_with_warning(self, pipeline):
        ir, vis = synthetic_pair(128, 160)
        result = pipeline(ir[::2, ::2], vis)
        assert result.fused.shape == (128, 160, 3)
        assert any("resized" in w for w in result.warnings)

    def test_16bit_visible_scaled_with_warning(self, pipeline):
        ir, vis = synthetic_pair(64, 64, color=False)
        result = pipeline(ir, vis.astype(np.uint16) * 257)
        assert any("16-bit visible" in w for w in result.warnings)


class TestConfig:
    def test_update_runtime_field(self, pipeline):
        before = pipeline.config.smoothing_radius
        pipeline.update(smoothing_radius=before + 2)
        assert pipeline.config.smoothing_radius == before + 2
        pipeline.update(smoothing_radius=before)

    def test_update_rejects_invalid_and_keeps_config(self, pipeline):
        before = dataclasses.asdict(pipeline.config)
        with pytest.raises(ValueError, match="visible_enhance"):
            pipeline.update(visible_enhance=3.0, smoothing_radius=1)
        with pytest.raises(ValueError, match="not runtime"):
            pipeline.update(max_pixels=10)
        assert dataclasses.asdict(pipeline.config) == before

    def test_runtime_fields_exist(self):
        names = {f.name for f in dataclasses.fields(FusionConfig)}
        assert names >= RUNTIME_FIELDS

    def test_invalid_mode(self):
        with pytest.raises(ValueError, match="mode"):
            FusionPipeline(FusionConfig(mode="magic"))

    def test_describe(self, pipeline):
        facts = pipeline.describe()
        assert facts["backend"] == "torch" and facts["model"] and "trained" in facts


def test_seed_mode_small_pair():
    pipeline = create_pipeline(FusionConfig(mode="seed", seed_stride=16), TORCH_CPU)
    ir, vis = synthetic_pair(64, 64, seed=3)
    result = pipeline(ir, vis)
    assert result.fused.shape == (64, 64, 3)
    assert result.weights.min() >= 0.0 and result.weights.max() <= 1.0
    gray = result.fused.mean(axis=2)
    assert gray.max() - gray.min() > 100  # Retinex output spans the range


def test_detector_input_size_rule():
    assert detector_input_size(512, 640, 0.5, 32) == ((256, 320), "area")
    assert detector_input_size(40, 640, 0.5, 32) == ((32, 512), "area")  # scale raised so one window fits
    assert detector_input_size(1024, 1280, 1.0, 32) == ((1024, 1280), None)
    assert detector_input_size(100, 120, 2.0, 32) == ((200, 240), "linear")


class TestReadyDetectors:
    def test_a_ready_backend_is_used_as_given(self, pipeline):
        backend = pipeline._detector("default")
        direct = FusionPipeline(FusionConfig(), backend)
        ir, vis = synthetic_pair(64, 80, seed=6)
        np.testing.assert_array_equal(direct(ir, vis).fused, pipeline(ir, vis).fused)
        assert direct.describe()["backend"] == "torch"
        with pytest.raises(FusionInputError, match="no detector for mode 'seed'"):
            direct.update(mode="seed")
        assert direct.config.mode == "default"
        assert FusionPipeline(FusionConfig(), {"default": backend}).describe()["model"] == pipeline.describe()["model"]

    def test_detectors_are_required(self):
        with pytest.raises(TypeError, match="create_pipeline"):
            FusionPipeline(FusionConfig())

    def test_seed_weights_that_do_not_load_refuse_the_mode_change(self, tmp_path):
        from ivif_ros.models import ModelError

        pipeline = create_pipeline(FusionConfig(), DetectorChoice(backend="torch", device="cpu",
                                                                 seed_model=str(tmp_path / "missing.safetensors")))
        with pytest.raises(ModelError):
            pipeline.check_update(mode="seed", visible_enhance=0.5)
        assert pipeline.config == FusionConfig()
