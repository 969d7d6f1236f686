"""Registry and ``auto`` selection order: TensorRT > torch on CUDA > onnxruntime on CPU > torch on CPU."""
import logging

import numpy as np
import pytest
import torch

from ivif_ros.backends import BackendError, available_backends, base, create_backend
from ivif_ros.backends.onnx_backend import has_onnxruntime


def test_auto_order_contract():
    assert base.AUTO_ORDER == ("tensorrt:cuda", "torch:cuda", "onnxruntime:cpu", "torch:cpu")


def test_candidates_follow_the_requested_device():
    cpu = {label: dev for _, dev, label in base._auto_candidates("cpu")}
    assert cpu["tensorrt:cuda"] is None and cpu["torch:cuda"] is None and cpu["onnxruntime:cpu"] == "cpu"
    cuda = {label: dev for _, dev, label in base._auto_candidates("cuda:1")}
    assert cuda["torch:cuda"] == "cuda:1" and cuda["torch:cpu"] is None
    auto = {label: dev for _, dev, label in base._auto_candidates("auto")}
    assert auto == {"tensorrt:cuda": "cuda", "torch:cuda": "cuda", "onnxruntime:cpu": "cpu", "torch:cpu": "cpu"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only selection")
def test_auto_on_cpu_logs_why(fast_net, caplog):
    with caplog.at_level(logging.INFO, logger="ivif_ros.backends"):
        backend = create_backend("auto", model=fast_net, device="auto")
    expected = "onnxruntime" if has_onnxruntime() else "torch"
    assert backend.name == expected and backend.device == "cpu"
    assert "torch:cuda: CUDA requested but" in caplog.text


def test_auto_falls_back_to_torch_without_onnxruntime(fast_net, monkeypatch):
    monkeypatch.setitem(base._AVAILABILITY, "onnxruntime", lambda device: "onnxruntime is not importable")
    backend = create_backend("auto", model=fast_net, device="cpu", intra_op_threads=1)  # option dropped for torch
    assert backend.name == "torch"


def test_auto_with_nothing_usable_lists_reasons(fast_net, monkeypatch):
    for name in list(base._AVAILABILITY):
        monkeypatch.setitem(base._AVAILABILITY, name, lambda device, name=name: f"{name} says no")
    with pytest.raises(BackendError) as info:
        create_backend("auto", model=fast_net, device="cpu")
    assert "torch:cpu: torch says no" in str(info.value) and "tensorrt:cuda: device 'cpu' requested" in str(info.value)


def test_unknown_backend(fast_net):
    with pytest.raises(BackendError, match="unknown backend"):
        create_backend("openvino", model=fast_net)


def test_available_backends_lists_all_three():
    assert {"torch", "onnxruntime", "tensorrt"} <= set(available_backends("cpu"))
    assert available_backends("cpu")["torch"] is None


def test_default_forward_tensor_round_trips(fast_net):
    class Doubler(base.DetectorBackend):
        name = "doubler"

        def __call__(self, pair):
            return (pair[:, :1] * 2).astype(np.float32)

    out = Doubler(32, 8).forward_tensor(torch.ones(1, 2, 4, 4, dtype=torch.float64))
    assert out.dtype == torch.float32 and torch.equal(out, torch.full((1, 1, 4, 4), 2.0))
