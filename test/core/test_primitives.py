"""core.primitives: numpy/OpenCV and torch implementations of each primitive agree, and so do the
fusion stages and the whole default mode written once over them (CPU numpy vs torch end to end).

Parity is checked against whatever the numpy primitives do at the time the tests run, so a change
of one implementation that is not made in the other fails here.
"""
import copy

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.backends.choice import DetectorChoice, create_pipeline
from ivif_ros.core import enhance, fusion, guided_filter, multiscale, weight_map
from ivif_ros.core.pipeline import FusionConfig, FusionPipeline
from ivif_ros.core.primitives import NUMPY_OPS, ops_for
from ivif_ros.core.synthetic import synthetic_pair

RNG = np.random.default_rng(0)
TORCH_CPU = DetectorChoice(backend="torch", device="cpu")
TORCH = ops_for("cpu")


def tensor(array: np.ndarray) -> torch.Tensor:
    """An H×W array as the (1, 1, H, W) tensor the torch primitives take."""
    return torch.from_numpy(np.ascontiguousarray(array))[None, None]


def array(value: torch.Tensor) -> np.ndarray:
    return value[0, 0].numpy()


@pytest.fixture(scope="module")
def numpy_pipe():
    torch.manual_seed(0)
    return create_pipeline(FusionConfig(), TORCH_CPU, use_torch=False)


@pytest.fixture(scope="module")
def torch_pipe():
    torch.manual_seed(0)
    return create_pipeline(FusionConfig(), TORCH_CPU, use_torch=True)


def same_detector(numpy_pipe, torch_pipe):
    torch_pipe._detectors = {"default": numpy_pipe._detector("default")}


def assert_close_results(expected, actual):
    assert actual.fused.dtype == expected.fused.dtype == np.uint8
    assert actual.fused.shape == expected.fused.shape
    assert actual.weights.dtype == np.float32 and actual.weights.shape == expected.weights.shape
    diff = np.abs(expected.fused.astype(np.int16) - actual.fused.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    np.testing.assert_allclose(actual.weights, expected.weights, atol=1e-4)
    assert set(expected.timings) <= set(actual.timings)


class TestPipelineParity:
    @pytest.mark.parametrize(
        "height,width,color,bits",
        [(256, 320, True, 8), (256, 320, False, 8), (301, 417, False, 16), (301, 417, True, 16)],
    )
    def test_default_mode_matches_numpy(self, numpy_pipe, torch_pipe, height, width, color, bits):
        same_detector(numpy_pipe, torch_pipe)
        ir, vis = synthetic_pair(height, width, seed=3, color=color, thermal_bits=bits)
        expected = numpy_pipe(ir, vis)
        actual = torch_pipe(ir, vis)
        assert torch_pipe._ops("default").name == "torch" and numpy_pipe._ops("default") is NUMPY_OPS
        assert_close_results(expected, actual)
        assert actual.weights.min() >= 0.0 and actual.weights.max() <= 1.0

    @pytest.mark.parametrize(
        "changes",
        [
            dict(thermal_enhance=0.5, visible_enhance=1.0, smoothing_radius=0, detector_scale=1.0,
                 thermal_stretch="percentile", weight_temperature=2.0, base_radius=5, base_temperature=3.0,
                 base_complement=0.0, detector_mix=0.2, detail_sigma=5.0, detail_gain=1.5, output_stretch=2.0),
            dict(detector_mix=1.0, output_stretch=0.0, base_complement=1.0),  # detector only, no stretch
            dict(fusion_scheme="two_scale", detector_mix=0.5),  # the earlier default
            dict(match_radius=1, selection_sharpness=4.0, pyramid_levels=5, detector_mix=0.6, match_threshold=0.3),
        ],
    )
    def test_nondefault_settings_match(self, numpy_pipe, torch_pipe, changes):
        same_detector(numpy_pipe, torch_pipe)
        numpy_pipe.update(**changes)
        torch_pipe.update(**changes)
        try:
            ir, vis = synthetic_pair(200, 240, seed=5)
            assert_close_results(numpy_pipe(ir, vis), torch_pipe(ir, vis))
        finally:
            defaults = FusionConfig()
            reset = {key: getattr(defaults, key) for key in changes}
            numpy_pipe.update(**reset)
            torch_pipe.update(**reset)

    def test_stream_mode_matches_numpy(self, numpy_pipe):
        detector = numpy_pipe._detector("default")
        numpy_stream = FusionPipeline(FusionConfig(), detector, use_torch=False, stream=True)
        torch_stream = FusionPipeline(FusionConfig(), detector, use_torch=True, stream=True)
        for index in range(3):  # the thermal gain changes: the smoothed bounds differ from per-frame ones
            ir, vis = synthetic_pair(96, 128, seed=6, t=0.1 * index)
            ir = np.clip(ir * (1.0 + 0.1 * index), 0, 255).astype(np.uint8)
            assert_close_results(numpy_stream(ir, vis), torch_stream(ir, vis))

    def test_float_thermal_and_readonly_inputs(self, numpy_pipe, torch_pipe):
        same_detector(numpy_pipe, torch_pipe)
        ir, vis = synthetic_pair(128, 160, seed=1)
        ir = ir.astype(np.float32) * 0.37 - 4.0
        ir.flags.writeable = False
        vis.flags.writeable = False
        assert_close_results(numpy_pipe(ir, vis), torch_pipe(ir, vis))

    def test_path_runs_on_the_backend_device(self, torch_pipe):
        assert torch_pipe._ops("default").device.type == "cpu"
        assert torch_pipe._ops("seed") is NUMPY_OPS  # the seed mode is numpy only

    def test_invalid_input_raises_like_numpy(self, torch_pipe):
        from ivif_ros.core.errors import FusionInputError

        with pytest.raises(FusionInputError):
            torch_pipe(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))


class TestPrimitives:
    def test_box_mean_matches_opencv_reflect(self):
        image = RNG.random((37, 53)).astype(np.float32)
        for radius in (1, 5, 40):  # 40: wider than the image, reflection wraps
            expected = NUMPY_OPS.box_mean(image, radius)
            np.testing.assert_allclose(array(TORCH.box_mean(tensor(image), radius)), expected, atol=1e-5)

    @pytest.mark.parametrize("sigma", [0.3, 2.0, 3.7, 32.0])  # 32: kernel (257 taps) wider than the image
    def test_gaussian_blur_matches_opencv(self, sigma):
        image = (RNG.random((37, 53)) * 255).astype(np.float32)
        expected = cv2.GaussianBlur(image, (0, 0), sigma)
        np.testing.assert_array_equal(NUMPY_OPS.gaussian_blur(image, sigma), expected)
        np.testing.assert_allclose(array(TORCH.gaussian_blur(tensor(image), sigma)), expected, atol=1e-3)

    @pytest.mark.parametrize("height,width", [(64, 80), (61, 77), (7, 9)])
    def test_pyramid_levels_match_opencv(self, height, width):
        image = (RNG.random((height, width)) * 255).astype(np.float32)
        down = NUMPY_OPS.pyr_down(image)
        np.testing.assert_array_equal(down, cv2.pyrDown(image))
        np.testing.assert_allclose(array(TORCH.pyr_down(tensor(image))), down, atol=1e-3)
        up = NUMPY_OPS.pyr_up(down, (height, width))  # odd sizes: OpenCV expands to 2h×2w and crops
        np.testing.assert_array_equal(up, cv2.pyrUp(down, dstsize=(width, height)))
        np.testing.assert_allclose(array(TORCH.pyr_up(tensor(down), (height, width))), up, atol=1e-3)

    def test_pyramid_fusion_matches_numpy(self):
        visible, infrared = ((RNG.random((2, 75, 90)) * 255).astype(np.float32))
        weights = RNG.random((75, 90)).astype(np.float32)
        variants = ((0.0, 0.0, 0.0), (3.0, 0.0, 0.0), (0.0, 0.3, 1.0), (4.0, 0.1, 1.5))  # sharpness, biases
        for sharpness, selection_bias, base_bias in variants:
            expected, expected_share = multiscale.pyramid_fuse(visible, infrared, weights, 3, 0.5, 2, sharpness, 8.0,
                                                               0.2, 1.1, selection_bias, base_bias)
            actual, share = multiscale.pyramid_fuse(tensor(visible), tensor(infrared), tensor(weights), 3, 0.5, 2,
                                                    sharpness, 8.0, 0.2, 1.1, selection_bias, base_bias, ops=TORCH)
            np.testing.assert_allclose(array(actual), expected, atol=2e-2)
            np.testing.assert_allclose(array(share), expected_share, atol=1e-3)
            assert expected_share.min() >= 0.0 and expected_share.max() <= 1.0
        bands = multiscale.laplacian_pyramid(visible, 3)
        np.testing.assert_allclose(multiscale.collapse_pyramid(bands), visible, atol=1e-3)  # exact inverse

    def test_tone_curve_matches_numpy(self):
        image = (RNG.random((37, 53)) * 300 - 20).astype(np.float32)  # beyond the knots at both ends
        knots, values = [0.0, 10.5, 128.0, 250.0, 255.0], [5.0, 30.0, 100.0, 240.0, 250.0]
        expected = NUMPY_OPS.interp(image, knots, values)
        np.testing.assert_allclose(expected, np.interp(image, knots, values), atol=1e-4)
        np.testing.assert_allclose(array(TORCH.interp(tensor(image), knots, values)), expected, atol=1e-3)
        assert expected.dtype == np.float32 and expected.min() == 5.0 and expected.max() == 250.0

    @pytest.mark.parametrize("dtype,levels", [(np.uint8, 256), (np.uint16, 65536)])
    def test_tone_map_of_integer_data_matches_numpy(self, dtype, levels):
        image = RNG.integers(0, levels, (37, 53)).astype(dtype)
        knots, values = [0.0, 0.2 * levels, 0.5 * levels, levels - 1.0], [0.0, 100.0, 130.0, 255.0]
        expected = NUMPY_OPS.tone_map(image, knots, values)
        np.testing.assert_allclose(expected, np.interp(image, knots, values), atol=1e-3)
        thermal = TORCH.upload(image, "tone")  # uint16 travels as int32
        np.testing.assert_allclose(array(TORCH.tone_map(thermal, knots, values)), expected, atol=1e-3)

    def test_fusion_rule_matches_numpy(self):
        visible, infrared = ((RNG.random((2, 60, 80)) * 255).astype(np.float32))
        detector = RNG.random((60, 80)).astype(np.float32)
        layers_vis, layers_ir = fusion.split_base_detail(visible, 6), fusion.split_base_detail(infrared, 6)
        bases, details = fusion.split_base_detail(torch.from_numpy(np.stack([visible, infrared]))[None], 6, ops=TORCH)
        np.testing.assert_allclose(bases[0].numpy(), np.stack([layers_vis[0], layers_ir[0]]), atol=1e-3)
        np.testing.assert_allclose(details[0].numpy(), np.stack([layers_vis[1], layers_ir[1]]), atol=1e-3)
        details_vis, details_ir = details[:, :1], details[:, 1:]
        energy = fusion.detail_energy_weights(layers_vis[1], layers_ir[1], 3.0)
        actual_energy = fusion.detail_energy_weights(details_vis, details_ir, 3.0, ops=TORCH)
        np.testing.assert_allclose(array(actual_energy), energy, atol=1e-5)
        expected = fusion.saliency_detail_fuse(layers_vis, layers_ir, detector, 7.0, 0.4, 1.3)
        actual = fusion.saliency_detail_fuse(
            (bases[:, :1], details_vis), (bases[:, 1:], details_ir), tensor(detector), 7.0, 0.4, 1.3, ops=TORCH
        )
        np.testing.assert_allclose(array(actual), expected, atol=1e-3)

    @pytest.mark.parametrize("clip_percent", [0.0, 0.5, 7.3])
    def test_percentile_stretch_matches_numpy(self, clip_percent):
        image = (RNG.random((101, 67)) * 400 - 60).astype(np.float32)
        for case in (image, np.full_like(image, 300.0)):  # constant: bounds coincide, only clipped
            expected = fusion.percentile_stretch(case.copy(), clip_percent)
            actual = array(fusion.percentile_stretch(tensor(case), clip_percent, ops=TORCH))
            np.testing.assert_allclose(actual, expected, atol=1e-3)

    def test_percentiles_of_a_batch_are_per_frame(self):
        frames = (RNG.random((3, 1, 40, 30)) * 1000).astype(np.float32)
        lows, highs = TORCH.percentiles(torch.from_numpy(frames), (2.0, 97.0), step=2)
        for k in range(3):
            assert [lows[k].item(), highs[k].item()] == pytest.approx(
                NUMPY_OPS.percentiles(frames[k, 0], (2.0, 97.0), step=2), abs=1e-9)
        counts = RNG.integers(0, 65536, (2, 1, 50, 40)).astype(np.uint16)
        tensors = TORCH.upload(counts[0, 0], "a"), TORCH.upload(counts[1, 0], "b")
        bounds = TORCH.histogram_percentiles(torch.cat(tensors), (0.5, 99.5))
        for k in range(2):
            expected = NUMPY_OPS.histogram_percentiles(counts[k, 0], (0.5, 99.5))
            assert [bounds[0][k].item(), bounds[1][k].item()] == expected

    def test_capped_percentile_samples(self):
        """``max_samples`` widens the step only when the sample would exceed it, on both primitive sets."""
        from ivif_ros.core.primitives.numpy_ops import sample_step

        assert sample_step((512, 640), 2, 81920) == 2 and sample_step((1, 512, 640), 4, 81920) == 4
        assert sample_step((1024, 1280), 2, 81920) == 4 and sample_step((1024, 1280), 2, None) == 2
        step = sample_step((2160, 3840), 2, 81920)
        assert -(-2160 // step) * -(-3840 // step) <= 81920 < -(-2160 // (step - 1)) * -(-3840 // (step - 1))
        image = (RNG.random((90, 70)) * 1000).astype(np.float32)
        capped = NUMPY_OPS.percentiles(image, (1.0, 50.0, 99.0), 2, 420)
        # 30 × 24 = 720 > 420 samples at step 3, 23 × 18 = 414 at step 4
        assert capped == NUMPY_OPS.percentiles(image, (1.0, 50.0, 99.0), 4)
        assert capped != NUMPY_OPS.percentiles(image, (1.0, 50.0, 99.0), 2)
        on_torch = TORCH.percentiles(tensor(image), (1.0, 50.0, 99.0), 2, 420)
        assert [bound.item() for bound in on_torch] == pytest.approx(capped, abs=1e-9)

    @pytest.mark.parametrize("size,mode,flag", [((17, 21), "area", cv2.INTER_AREA), ((64, 80), "area", cv2.INTER_AREA),
                                                ((300, 200), "linear", cv2.INTER_LINEAR)])
    def test_resize_matches_opencv(self, size, mode, flag):
        image = RNG.random((128, 160)).astype(np.float32)
        expected = cv2.resize(image, (size[1], size[0]), interpolation=flag)
        np.testing.assert_array_equal(NUMPY_OPS.resize(image, size, mode), expected)
        np.testing.assert_allclose(array(TORCH.resize(tensor(image), size, mode)), expected, atol=1e-5)

    @pytest.mark.parametrize("subsample", [1, 3])
    def test_guided_filter_matches(self, subsample):
        guide, src = RNG.random((90, 120)).astype(np.float32), RNG.random((90, 120)).astype(np.float32)
        expected = guided_filter.fast_guided_filter(guide, src, 8, 1e-3, subsample)
        actual = guided_filter.fast_guided_filter(tensor(guide), tensor(src), 8, 1e-3, subsample, ops=TORCH)
        np.testing.assert_allclose(array(actual), expected, atol=1e-5)
        with pytest.raises(ValueError):
            guided_filter.fast_guided_filter(tensor(guide), tensor(src[:10]), 8, 1e-3, ops=TORCH)

    def test_colour_conversions_are_bit_exact(self):
        bgr = RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)
        luminance = (RNG.random((40, 50)) * 300 - 20).astype(np.float32)
        luma, state = TORCH.luma(TORCH.upload(bgr, "vis"))
        assert np.array_equal(array(luma), fusion.to_ycrcb(bgr)[:, :, 0].astype(np.float32))
        expected = fusion.merge_luminance(bgr, luminance)
        assert np.array_equal(TORCH.merge_luma(state, tensor(luminance))[0].numpy(), expected)

    def test_constant_thermal_maps_to_zero(self):
        flat = torch.full((1, 1, 32, 40), 7, dtype=torch.uint8)
        assert torch.count_nonzero(enhance.stretch_thermal(flat, "auto", (0.5, 99.5), ops=TORCH)) == 0
        assert torch.count_nonzero(enhance.stretch_thermal(flat.to(torch.int32), "percentile", (0.5, 99.5),
                                                           ops=TORCH)) == 0

    @pytest.mark.parametrize("bits,method", [(8, "auto"), (16, "auto"), (8, "percentile"), (16, "minmax")])
    def test_thermal_stretch_matches(self, bits, method):
        ir, _ = synthetic_pair(64, 80, seed=4, thermal_bits=bits)
        expected = enhance.stretch_thermal(ir, method, (1.0, 98.0))
        actual = array(enhance.stretch_thermal(TORCH.upload(ir, "ir"), method, (1.0, 98.0), ops=TORCH))
        np.testing.assert_allclose(actual, expected, atol=1e-3)

    def test_enhancement_matches(self):
        image = (RNG.random((70, 90)) * 200 + 20).astype(np.float32)
        expected = enhance.enhance_luminance(image, target_contrast=3.0, detail_gain=1.2)
        actual = array(enhance.enhance_luminance(tensor(image), target_contrast=3.0, detail_gain=1.2, ops=TORCH))
        np.testing.assert_allclose(actual, expected, atol=1e-2)

    def test_soft_weight_map_matches(self):
        scores = (RNG.standard_normal((9, 11)) * 3).astype(np.float32)
        expected = weight_map.soft_weight_map(scores, 32, 8, (100, 120), 1.5)
        actual = array(weight_map.soft_weight_map(tensor(scores), 32, 8, (100, 120), 1.5, ops=TORCH))
        np.testing.assert_allclose(actual, expected, atol=1e-6)
        np.testing.assert_allclose(array(TORCH.sigmoid(tensor(scores))), NUMPY_OPS.sigmoid(scores), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available: CUDA-vs-CPU parity not run")
@pytest.mark.parametrize("height,width", [(512, 640), (1024, 1280)])
def test_cuda_matches_cpu(numpy_pipe, height, width, monkeypatch):
    """TF32 off: on by default for cuDNN convolutions, it alone would exceed the 1e-4 weight tolerance."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    from ivif_ros.backends.torch_backend import TorchBackend
    from ivif_ros.core.pipeline import FusionPipeline
    from ivif_ros.models import load_model

    net, _ = load_model(None)
    cuda_net = copy.deepcopy(net)  # same weights (an untrained net is randomly initialised)
    cpu = FusionPipeline(FusionConfig(), TorchBackend(net, device="cpu"), use_torch=True)
    cuda = FusionPipeline(FusionConfig(), TorchBackend(cuda_net, device="cuda", fp16=False))
    ir, vis = synthetic_pair(height, width, seed=2)
    expected, actual = cpu(ir, vis), cuda(ir, vis)
    assert cuda._ops("default").device.type == "cuda"
    assert_close_results(expected, actual)
    assert actual.timings["detect"] > 0.0


def test_default_mode_runs_batched_on_torch(numpy_pipe):
    """Frames stacked on the batch axis give each frame's own result (per-frame scalars stay per frame)."""
    from ivif_ros.core.default_mode import fuse_default

    config = FusionConfig(thermal_stretch="percentile")
    pairs = [synthetic_pair(96, 128, seed=s, thermal_bits=16) for s in (1, 2)]
    pairs[1] = (pairs[1][0] // 3, pairs[1][1] // 2)  # different ranges: per-frame bounds must differ

    def run(thermal, visible):
        visible_lum, _ = TORCH.luma(visible)
        detect = lambda v, t, scale: numpy_pipe._detect(TORCH, "default", v, t, scale)  # noqa: E731
        with TORCH.frame_context():
            return fuse_default(TORCH, thermal, visible_lum, config, detect, TORCH.clock())

    singles = [run(TORCH.upload(ir, "ir"), TORCH.upload(vis, "vis")) for ir, vis in pairs]
    batch = run(torch.cat([TORCH.upload(ir, "ir") for ir, _ in pairs]),
                torch.cat([TORCH.upload(vis, "vis") for _, vis in pairs]))
    for index, (fused, weights) in enumerate(singles):
        np.testing.assert_allclose(batch[0][index].numpy(), fused[0].numpy(), atol=1e-3)
        np.testing.assert_allclose(batch[1][index].numpy(), weights[0].numpy(), atol=1e-5)
    assert np.abs(singles[0][0].numpy() - singles[1][0].numpy()).mean() > 1.0
