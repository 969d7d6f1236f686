"""TensorRT backend: availability reasons everywhere; build/parity only where TensorRT and CUDA exist."""
import sys

import numpy as np
import pytest
import torch

from ivif_ros.backends import BackendError, available_backends, create_backend
from ivif_ros.backends import tensorrt_backend as trt_backend
from ivif_ros.backends.tensorrt_backend import has_tensorrt, tensorrt_unavailable_reason

REASON = tensorrt_unavailable_reason("cuda")


def test_cpu_device_is_refused_with_reason():
    assert "CUDA devices only" in tensorrt_unavailable_reason("cpu")


def test_missing_package_reason_has_install_hint(monkeypatch):
    monkeypatch.setattr(trt_backend, "has_tensorrt", lambda: False)
    reason = tensorrt_unavailable_reason("auto")
    assert "not importable" in reason and "pip install tensorrt" in reason


def test_broken_tensorrt_import_is_not_available(monkeypatch):
    """A stub wheel whose import fails must count as absent, not crash discovery."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    assert not has_tensorrt()


def test_missing_cuda_reason(monkeypatch):
    monkeypatch.setattr(trt_backend, "has_tensorrt", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in tensorrt_unavailable_reason("auto")


def test_registry_reports_reason_and_auto_skips(fast_net, caplog):
    reasons = available_backends("auto")
    assert "tensorrt" in reasons
    if REASON is None:
        pytest.skip("TensorRT is usable here; the skip path is not exercised")
    assert reasons["tensorrt"] == tensorrt_unavailable_reason("auto")
    with pytest.raises(BackendError, match="tensorrt backend unavailable|not usable"):
        create_backend("tensorrt", model=fast_net, device="cuda")
    with caplog.at_level("INFO", logger="ivif_ros.backends"):
        backend = create_backend("auto", model=fast_net)
    assert backend.name != "tensorrt"
    assert "tensorrt:cuda:" in caplog.text  # auto logged why it skipped TensorRT


def test_constructor_error_names_the_problem(fast_net, monkeypatch):
    monkeypatch.setattr(trt_backend, "has_tensorrt", lambda: False)
    with pytest.raises(BackendError, match="pip install tensorrt"):
        trt_backend.TensorRTBackend(fast_net, device="cuda")


@pytest.fixture
def trt_or_skip():
    if REASON is not None:
        print(f"\nSKIP TensorRT parity: {REASON}")
        pytest.skip(f"TensorRT unavailable: {REASON}")


@pytest.mark.parametrize("size", [(256, 320), (512, 640)])
def test_parity_with_torch(trt_or_skip, fast_net, tmp_path, size):
    backend = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path, fp16=False)
    gen = torch.Generator().manual_seed(0)
    pair = torch.rand(1, 2, *size, generator=gen)
    with torch.inference_mode():
        expected = fast_net.float().cpu()(pair).numpy()
    np.testing.assert_allclose(backend(pair.numpy()), expected, atol=1e-3, rtol=1e-3)


def test_engine_is_cached_and_reloaded(trt_or_skip, fast_net, tmp_path):
    first = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path)
    second = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path)
    assert first.built and not second.built and first.engine_path == second.engine_path
    first.engine_path.write_bytes(b"corrupt")
    third = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path)
    assert third.built


def test_outside_profile_is_refused(trt_or_skip, fast_net, tmp_path):
    backend = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path, resolutions=[(64, 64), (128, 128)])
    with pytest.raises(BackendError, match="outside the engine profile"):
        backend(np.zeros((1, 2, 256, 256), np.float32))
