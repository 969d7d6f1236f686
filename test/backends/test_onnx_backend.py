"""onnxruntime backend: export with dynamic H/W, parity with torch, cache reuse, errors."""
import copy

import numpy as np
import pytest
import torch

from ivif_ros.backends import BackendError, create_backend
from ivif_ros.backends.onnx_backend import OnnxRuntimeBackend, cached_onnx, export_onnx, has_onnxruntime

pytestmark = pytest.mark.skipif(not has_onnxruntime(), reason="onnxruntime is not installed")


def blurry_pair(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A (1, 2, H, W) pair: sharp noise texture (A) and its blurred copy (B)."""
    gen = torch.Generator().manual_seed(seed)
    sharp = torch.rand(1, 1, height, width, generator=gen)
    blurred = torch.nn.functional.avg_pool2d(sharp, 7, 1, 3, count_include_pad=False)
    return torch.cat([sharp, blurred], 1).numpy()


@pytest.mark.parametrize("size", [(256, 320), (517, 643)])
def test_parity_with_torch(fast_net, size):
    backend = create_backend("onnxruntime", model=fast_net, device="cpu", intra_op_threads=1)
    pair = blurry_pair(*size)
    with torch.inference_mode():
        expected = fast_net(torch.from_numpy(pair)).numpy()
    scores = backend(pair)
    assert scores.shape == expected.shape == (1, 1, (size[0] - 32) // 8 + 1, (size[1] - 32) // 8 + 1)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.01  # the comparison is not vacuous


def test_forward_tensor_matches_numpy_call(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu")
    pair = blurry_pair(64, 96)
    out = backend.forward_tensor(torch.from_numpy(pair))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), backend(pair))


def test_export_is_cached_by_fingerprint(fast_net, tmp_path):
    first = cached_onnx(fast_net, tmp_path).path
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(fast_net, tmp_path).path == first and first.stat().st_mtime_ns == stamp
    with torch.no_grad():
        fast_net.compare[2].bias += 0.25
    second = cached_onnx(fast_net, tmp_path).path
    assert second != first and second.is_file()


def test_corrupt_cached_export_is_exported_again(fast_net, tmp_path):
    path = cached_onnx(fast_net, tmp_path).path
    path.write_bytes(b"not an onnx graph")
    backend = OnnxRuntimeBackend(fast_net, device="cpu", cache_dir=tmp_path)
    assert backend.onnx_path == path and path.stat().st_size > 1000
    assert backend(blurry_pair(40, 40)).shape == (1, 1, 2, 2)


def test_explicit_onnx_path(fast_net, tmp_path):
    path = export_onnx(fast_net, tmp_path / "detector.onnx")
    backend = OnnxRuntimeBackend(fast_net, device="cpu", onnx_path=path)
    assert backend.describe()["onnx"] == str(path)
    with pytest.raises(BackendError, match="ONNX file not found"):
        OnnxRuntimeBackend(fast_net, device="cpu", onnx_path=tmp_path / "missing.onnx")


def test_thread_setting_and_describe(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu", intra_op_threads=1)
    facts = backend.describe()
    assert facts["backend"] == "onnxruntime" and facts["device"] == "cpu"
    assert facts["intra_op_threads"] == "1" and "CPUExecutionProvider" in facts["providers"]
    assert facts["spinning"] == "True"


def test_no_spinning_option_still_scores(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu", spinning=False)
    assert backend.describe()["spinning"] == "False"
    pair = blurry_pair(64, 64)
    with torch.inference_mode():
        np.testing.assert_allclose(backend(pair), fast_net(torch.from_numpy(pair)).numpy(), atol=1e-4)


def test_set_stride_reexports(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu")
    pair = blurry_pair(96, 96)
    assert backend(pair).shape == (1, 1, 9, 9)
    backend.set_stride(16)
    assert backend.stride == 16 and backend(pair).shape == (1, 1, 5, 5)
    strided = copy.deepcopy(fast_net)
    strided.stride = 16
    with torch.inference_mode():
        np.testing.assert_allclose(backend(pair), strided(torch.from_numpy(pair)).numpy(), atol=1e-4)
    with pytest.raises(BackendError):
        backend.set_stride(12)


def test_bad_input_is_refused(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu")
    with pytest.raises(BackendError, match="pair must be"):
        backend(np.zeros((1, 2, 16, 64), np.float32))


def test_cuda_provider_absent_is_explained(fast_net):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(BackendError, match="CUDAExecutionProvider"):
        create_backend("onnxruntime", model=fast_net, device="cuda")


def test_backend_does_not_touch_the_callers_module(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu")
    backend.set_stride(16)
    assert fast_net.stride == 8 and backend.stride == 16


def test_batched_input_scores_each_sample(fast_net):
    backend = OnnxRuntimeBackend(fast_net, device="cpu")
    pairs = np.concatenate([blurry_pair(64, 96, seed) for seed in range(3)])
    batched = backend(pairs)
    assert batched.shape[0] == 3
    for index in range(3):
        np.testing.assert_allclose(batched[index:index + 1], backend(pairs[index:index + 1]), atol=1e-6)


def test_fp16_export_keeps_float32_io(fast_net, tmp_path):
    """The fp16 graph (what a strongly typed TensorRT network is built from) takes and returns float32."""
    fp16 = cached_onnx(fast_net, tmp_path, precision="fp16")
    fp32 = cached_onnx(fast_net, tmp_path)
    assert fp16.path != fp32.path and fp16.sha256 != fp32.sha256
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(fp16.data, providers=["CPUExecutionProvider"])
    except Exception as error:  # an onnxruntime build without fp16 CPU kernels
        pytest.skip(f"this onnxruntime cannot run fp16 graphs on CPU: {error}")
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    pair = blurry_pair(64, 64)
    with torch.inference_mode():
        expected = fast_net(torch.from_numpy(pair)).numpy()
    np.testing.assert_allclose(session.run(None, {"pair": pair})[0], expected, atol=5e-2, rtol=5e-2)
