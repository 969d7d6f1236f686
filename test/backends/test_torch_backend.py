"""Torch backend: fp32 parity, channels_last, tensor path, CUDA-only options."""
import numpy as np
import pytest
import torch

from ivif_ros.backends import BackendError, create_backend
from ivif_ros.backends.torch_backend import TorchBackend


def reference(net, pair):
    with torch.inference_mode():
        return net(torch.from_numpy(pair)).numpy()


@pytest.fixture
def pair():
    gen = torch.Generator().manual_seed(3)
    return torch.rand(1, 2, 96, 128, generator=gen).numpy()


def test_cpu_fp32_matches_module(fast_net, pair):
    expected = reference(fast_net, pair)
    backend = create_backend("torch", model=fast_net, device="cpu")
    assert backend.describe()["precision"] == "fp32" and backend.describe()["channels_last"] == "False"
    np.testing.assert_allclose(backend(pair), expected, atol=1e-5)


def test_channels_last_matches(fast_net, pair):
    expected = reference(fast_net, pair)
    backend = TorchBackend(fast_net, device="cpu", channels_last=True)
    np.testing.assert_allclose(backend(pair), expected, atol=1e-4)


def test_forward_tensor_stays_a_tensor(fast_net, pair):
    backend = TorchBackend(fast_net, device="cpu")
    out = backend.forward_tensor(torch.from_numpy(pair))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (1, 1, 9, 13)


def test_cuda_graphs_need_cuda(fast_net):
    with pytest.raises(BackendError, match="cuda_graphs needs a CUDA device"):
        TorchBackend(fast_net, device="cpu", cuda_graphs=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("fp16,graphs", [(False, False), (True, False), (False, True), (True, True)])
def test_cuda_matches_cpu(fast_net, pair, fp16, graphs, no_tf32):
    """fp32 rows run with TF32 off (no_tf32): TF32 convolutions alone exceed the fp32 tolerance."""
    expected = reference(fast_net, pair)
    backend = TorchBackend(fast_net, device="cuda", fp16=fp16, cuda_graphs=graphs)
    tolerance = 5e-2 if fp16 else 1e-3
    for _ in range(2):  # second call replays the captured graph
        np.testing.assert_allclose(backend(pair), expected, atol=tolerance, rtol=tolerance)


def test_callers_module_is_never_modified(fast_net, pair):
    """fp16 / channels_last / a new stride apply to the backend's copy only (one module feeds many rows)."""
    before = {name: value.clone() for name, value in fast_net.state_dict().items()}
    half = TorchBackend(fast_net, device="cpu", fp16=True, channels_last=True)
    half.set_stride(16)
    for name, value in fast_net.state_dict().items():
        assert value.dtype == before[name].dtype and torch.equal(value, before[name]), name
    assert fast_net.stride == 8 and fast_net.encoder[0].weight.is_contiguous()
    fp32 = TorchBackend(fast_net, device="cpu")
    np.testing.assert_allclose(fp32(pair), reference(fast_net, pair), atol=1e-5)
    assert half(pair).shape == (1, 1, 5, 7)


def test_batch_matches_single_calls(fast_net):
    backend = TorchBackend(fast_net, device="cpu")
    pairs = torch.rand(3, 2, 64, 96, generator=torch.Generator().manual_seed(5)).numpy()
    batched = backend(pairs)
    for index in range(3):
        np.testing.assert_allclose(batched[index:index + 1], backend(pairs[index:index + 1]), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available: stream checks not run")
def test_cuda_calls_avoid_the_default_stream(fast_net, pair):
    backend = TorchBackend(fast_net, device="cuda", fp16=False)
    assert backend._stream is not None and backend._stream != torch.cuda.default_stream()
    np.testing.assert_allclose(backend(pair), reference(fast_net, pair), atol=1e-3)
