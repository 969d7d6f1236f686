"""core.torch_pipeline: the tensor twin of FusionPipeline's default mode.

Parity is checked against whatever ``FusionPipeline`` (numpy path) does at the time the tests run
for the ``two_scale`` fusion scheme, the one the tensor path implements; the ``pyramid`` scheme
(the default) falls back to the numpy path, which is tested too.
"""
import copy

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.core import fusion, guided_filter
from ivif_ros.core import torch_pipeline as tp
from ivif_ros.backends.choice import DetectorChoice, create_pipeline
from ivif_ros.core.pipeline import FusionConfig, FusionPipeline
from ivif_ros.core.synthetic import synthetic_pair

RNG = np.random.default_rng(0)
TORCH_CPU = DetectorChoice(backend="torch", device="cpu")
# The scheme the tensor path implements, with the settings it was the default with.
TWO_SCALE = dict(fusion_scheme="two_scale", detector_mix=0.5)


@pytest.fixture(scope="module")
def numpy_pipe():
    torch.manual_seed(0)
    return create_pipeline(FusionConfig(**TWO_SCALE), TORCH_CPU, use_torch=False)


@pytest.fixture(scope="module")
def torch_pipe():
    torch.manual_seed(0)
    return create_pipeline(FusionConfig(**TWO_SCALE), TORCH_CPU, use_torch=True)


def same_detector(numpy_pipe, torch_pipe):
    torch_pipe._detectors = {"default": numpy_pipe._detector("default")}
    torch_pipe._torch_path = None


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
        assert torch_pipe._torch_path is not None and numpy_pipe._torch_path is None
        assert_close_results(expected, actual)
        assert 0.0 <= actual.weights.min() and actual.weights.max() <= 1.0

    @pytest.mark.parametrize(
        "changes",
        [
            dict(thermal_enhance=0.5, visible_enhance=1.0, smoothing_radius=0, detector_scale=1.0,
                 thermal_stretch="percentile", weight_temperature=2.0, base_radius=5, base_temperature=3.0,
                 base_complement=0.0, detector_mix=0.2, detail_sigma=5.0, detail_gain=1.5, output_stretch=2.0),
            dict(detector_mix=1.0, output_stretch=0.0, base_complement=1.0),  # detector only, no stretch
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
            defaults = FusionConfig(**TWO_SCALE)
            reset = {key: getattr(defaults, key) for key in changes}
            numpy_pipe.update(**reset)
            torch_pipe.update(**reset)

    def test_float_thermal_and_readonly_inputs(self, numpy_pipe, torch_pipe):
        same_detector(numpy_pipe, torch_pipe)
        ir, vis = synthetic_pair(128, 160, seed=1)
        ir = ir.astype(np.float32) * 0.37 - 4.0
        ir.flags.writeable = False
        vis.flags.writeable = False
        assert_close_results(numpy_pipe(ir, vis), torch_pipe(ir, vis))

    def test_pyramid_scheme_and_stream_mode_fall_back_to_numpy(self, numpy_pipe):
        ir, vis = synthetic_pair(120, 150, seed=4)
        for stream in (False, True):
            detector = numpy_pipe._detector("default")
            pyramid_numpy = FusionPipeline(FusionConfig(), detector, use_torch=False, stream=stream)
            pyramid_gpu = FusionPipeline(FusionConfig(), detector, use_torch=True, stream=stream)
            expected, actual = pyramid_numpy(ir, vis), pyramid_gpu(ir, vis)
            assert pyramid_gpu._torch_path is None
            np.testing.assert_array_equal(actual.fused, expected.fused)

    def test_path_runs_on_the_backend_device(self, torch_pipe):
        path = tp.TorchFusionPath(torch_pipe._detector("default"))
        assert path.device.type == "cpu"

    def test_invalid_input_raises_like_numpy(self, torch_pipe):
        from ivif_ros.core.errors import FusionInputError

        with pytest.raises(FusionInputError):
            torch_pipe(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))


class TestPrimitives:
    def test_box_mean_matches_opencv_reflect(self):
        image = RNG.random((37, 53)).astype(np.float32)
        for radius in (1, 5, 40):  # 40: wider than the image, reflection wraps
            expected = guided_filter._box_mean(image, radius)
            np.testing.assert_allclose(tp.box_mean(torch.from_numpy(image), radius).numpy(), expected, atol=1e-5)

    @pytest.mark.parametrize("sigma", [0.3, 2.0, 3.7, 32.0])  # 32: kernel (257 taps) wider than the image
    def test_gaussian_blur_matches_opencv(self, sigma):
        image = (RNG.random((37, 53)) * 255).astype(np.float32)
        expected = cv2.GaussianBlur(image, (0, 0), sigma)
        np.testing.assert_allclose(tp.gaussian_blur(torch.from_numpy(image), sigma).numpy(), expected, atol=1e-3)

    def test_fusion_rule_matches_numpy(self):
        visible, infrared = ((RNG.random((2, 60, 80)) * 255).astype(np.float32))
        detector = RNG.random((60, 80)).astype(np.float32)
        layers_vis, layers_ir = fusion.split_base_detail(visible, 6), fusion.split_base_detail(infrared, 6)
        bases, details = tp.split_base_detail(torch.from_numpy(np.stack([visible, infrared])), 6)
        np.testing.assert_allclose(bases.numpy(), np.stack([layers_vis[0], layers_ir[0]]), atol=1e-3)
        np.testing.assert_allclose(details.numpy(), np.stack([layers_vis[1], layers_ir[1]]), atol=1e-3)
        energy = fusion.detail_energy_weights(layers_vis[1], layers_ir[1], 3.0)
        np.testing.assert_allclose(tp.detail_energy_weights(details[0], details[1], 3.0).numpy(), energy, atol=1e-5)
        expected = fusion.saliency_detail_fuse(layers_vis, layers_ir, detector, 7.0, 0.4, 1.3)
        actual = tp.saliency_detail_fuse(
            (bases[0], details[0]), (bases[1], details[1]), torch.from_numpy(detector), 7.0, 0.4, 1.3
        )
        np.testing.assert_allclose(actual.numpy(), expected, atol=1e-3)

    @pytest.mark.parametrize("clip_percent", [0.0, 0.5, 7.3])
    def test_percentile_stretch_matches_numpy(self, clip_percent):
        image = (RNG.random((101, 67)) * 400 - 60).astype(np.float32)
        for case in (image, np.full_like(image, 300.0)):  # constant: bounds coincide, only clipped
            expected = fusion.percentile_stretch(case.copy(), clip_percent)
            actual = tp.percentile_stretch(torch.from_numpy(case), clip_percent).numpy()
            np.testing.assert_allclose(actual, expected, atol=1e-3)

    @pytest.mark.parametrize("size,mode,flag", [((17, 21), "area", cv2.INTER_AREA), ((64, 80), "area", cv2.INTER_AREA),
                                                ((300, 200), "linear", cv2.INTER_LINEAR)])
    def test_resize_matches_opencv(self, size, mode, flag):
        image = RNG.random((128, 160)).astype(np.float32)
        expected = cv2.resize(image, (size[1], size[0]), interpolation=flag)
        np.testing.assert_allclose(tp.resize(torch.from_numpy(image), size, mode).numpy(), expected, atol=1e-5)

    @pytest.mark.parametrize("subsample", [1, 3])
    def test_guided_filter_matches(self, subsample):
        guide, src = RNG.random((90, 120)).astype(np.float32), RNG.random((90, 120)).astype(np.float32)
        expected = guided_filter.fast_guided_filter(guide, src, 8, 1e-3, subsample)
        actual = tp.fast_guided_filter(torch.from_numpy(guide), torch.from_numpy(src), 8, 1e-3, subsample)
        np.testing.assert_allclose(actual.numpy(), expected, atol=1e-5)
        with pytest.raises(ValueError):
            tp.fast_guided_filter(torch.from_numpy(guide), torch.from_numpy(src[:10]), 8, 1e-3)

    def test_colour_conversions_are_bit_exact(self):
        bgr = RNG.integers(0, 256, (40, 50, 3), dtype=np.uint8)
        luminance = (RNG.random((40, 50)) * 300 - 20).astype(np.float32)
        assert np.array_equal(tp.bgr_to_luma(torch.from_numpy(bgr)).numpy(), fusion.to_ycrcb(bgr)[:, :, 0].astype(np.int32))
        expected = fusion.merge_luminance(bgr, luminance)
        assert np.array_equal(tp.merge_luminance(torch.from_numpy(bgr), torch.from_numpy(luminance)).numpy(), expected)

    def test_constant_thermal_maps_to_zero(self):
        flat = torch.full((32, 40), 7, dtype=torch.uint8)
        assert torch.count_nonzero(tp.stretch_thermal(flat, "auto", (0.5, 99.5), 256)) == 0
        assert torch.count_nonzero(tp.stretch_thermal(flat.to(torch.int32), "percentile", (0.5, 99.5), 65536)) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available: CUDA-vs-CPU parity not run")
@pytest.mark.parametrize("height,width", [(512, 640), (1024, 1280)])
def test_cuda_matches_cpu(numpy_pipe, height, width):
    from ivif_ros.backends.torch_backend import TorchBackend
    from ivif_ros.models import load_model

    net, _ = load_model(None)
    cuda_net = copy.deepcopy(net)  # same weights (an untrained net is randomly initialised)
    cpu = tp.TorchFusionPath(TorchBackend(net, device="cpu"))
    cuda = tp.TorchFusionPath(TorchBackend(cuda_net, device="cuda", fp16=False))
    ir, vis = synthetic_pair(height, width, seed=2)
    expected, actual = cpu(ir, vis, FusionConfig(**TWO_SCALE)), cuda(ir, vis, FusionConfig(**TWO_SCALE))
    assert_close_results(expected, actual)
    assert actual.timings["detect"] > 0.0
