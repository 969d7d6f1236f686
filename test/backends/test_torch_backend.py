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
@pytest.mark.parametrize("fp16,graphs", [(False, False), (True, False), (True, True)])
def test_cuda_matches_cpu(fast_net, pair, fp16, graphs):
    expected = reference(fast_net, pair)
    backend = TorchBackend(fast_net, device="cuda", fp16=fp16, cuda_graphs=graphs)
    tolerance = 5e-2 if fp16 else 1e-3
    for _ in range(2):  # second call replays the captured graph
        np.testing.assert_allclose(backend(pair), expected, atol=tolerance, rtol=tolerance)
