"""TensorRT backend: availability reasons, the build against a minimal fake ``tensorrt`` module (the
TensorRT 11 API without the weak-typing flags, and an 8.x-style one), errors → ``BackendError`` and
``auto`` fallback; build/parity on a real engine only where TensorRT and CUDA exist."""
import importlib.machinery
import logging
import sys
import types

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
    """fp32 engine with TF32 turned off (TensorRT enables TF32 for fp32 layers by default, which
    alone exceeds a 1e-4 tolerance); the reference runs on the CPU in float32."""
    backend = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path, fp16=False, tf32=False)
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
    backend = create_backend(
        "tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path, resolutions=[(64, 64), (128, 128)]
    )
    with pytest.raises(BackendError, match="outside the engine profile"):
        backend(np.zeros((1, 2, 256, 256), np.float32))


def test_fp16_engine_and_batches(trt_or_skip, fast_net, tmp_path):
    backend = create_backend("tensorrt", model=fast_net, device="cuda", engine_dir=tmp_path, fp16=True, max_batch=4)
    pairs = torch.rand(3, 2, 64, 80, generator=torch.Generator().manual_seed(1))  # detector_scale 0.25 of 320x256
    with torch.inference_mode():
        expected = fast_net.float().cpu()(pairs).numpy()
    np.testing.assert_allclose(backend(pairs.numpy()), expected, atol=5e-2, rtol=5e-2)
    assert "strongly_typed" in backend.describe()["build"] or "fp16_flag" in backend.describe()["build"]


# ---- against a minimal fake ``tensorrt`` module (no GPU needed) ------------------------------
def fake_tensorrt(version: str = "11.0.0", strongly_typed: bool = True, fp16_flag: bool = False,
                  build_result=b"ENGINE", parse_ok: bool = True) -> types.ModuleType:
    """The subset of the TensorRT Python API the builder uses; records what the builder did."""
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    trt.calls = []

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    creation = {"STRONGLY_TYPED": 5} if strongly_typed else {}
    if version.startswith("8"):
        creation["EXPLICIT_BATCH"] = 0
    trt.NetworkDefinitionCreationFlag = type("NetworkDefinitionCreationFlag", (), creation)
    trt.BuilderFlag = type("BuilderFlag", (), {"TF32": 7, **({"FP16": 0} if fp16_flag else {})})
    trt.MemoryPoolType = type("MemoryPoolType", (), {"WORKSPACE": 0})
    trt.DataType = type("DataType", (), {"FLOAT": 0, "HALF": 1, "INT8": 2})

    class Input:
        name = "pair"

    class Network:
        def __init__(self, flags):
            trt.calls.append(("create_network", flags))

        def get_input(self, index):
            return Input()

    class Profile:
        def set_shape(self, name, low, opt, high):
            trt.calls.append(("profile", name, low, opt, high))

    class Config:
        def set_memory_pool_limit(self, pool, size):
            trt.calls.append(("workspace", size))

        def set_flag(self, flag):
            trt.calls.append(("set_flag", flag))

        def clear_flag(self, flag):
            trt.calls.append(("clear_flag", flag))

        def add_optimization_profile(self, profile):
            return 0

    class Builder:  # no platform_has_fast_fp16: gone in TensorRT 11
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            if isinstance(build_result, Exception):
                raise build_result
            return build_result

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            return parse_ok

        def get_error(self, index):
            return "In node 3 (Conv): unsupported"

    trt.Logger, trt.Builder, trt.OnnxParser = Logger, Builder, OnnxParser
    return trt


PROFILE = trt_backend.profile_from_resolutions(trt_backend.DEFAULT_RESOLUTIONS, max_batch=8)


def test_trt11_fp16_is_strongly_typed_without_the_removed_flags():
    trt = fake_tensorrt("11.0.0", strongly_typed=True, fp16_flag=False)
    plan = trt_backend.build_plan(trt, fp16=True)
    assert plan.strongly_typed and not plan.fp16_flag and plan.onnx_precision == "fp16"
    engine = trt_backend.build_serialized(trt, b"onnx", PROFILE, plan, 1 << 20)
    assert engine == b"ENGINE"
    assert ("create_network", 1 << 5) in trt.calls  # STRONGLY_TYPED, no EXPLICIT_BATCH on 10+
    assert not any(call[0] == "set_flag" for call in trt.calls)


def test_weakly_typed_tensorrt_uses_the_fp16_flag():
    trt = fake_tensorrt("8.6.1", strongly_typed=False, fp16_flag=True)
    plan = trt_backend.build_plan(trt, fp16=True)
    assert not plan.strongly_typed and plan.fp16_flag and plan.onnx_precision == "fp32"
    trt_backend.build_serialized(trt, b"onnx", PROFILE, plan, 1 << 20)
    assert ("create_network", 1 << 0) in trt.calls and ("set_flag", 0) in trt.calls


def test_no_fp16_route_is_a_backend_error():
    trt = fake_tensorrt("11.0.0", strongly_typed=False, fp16_flag=False)
    with pytest.raises(BackendError, match="neither strongly typed"):
        trt_backend.build_plan(trt, fp16=True)
    assert trt_backend.build_plan(trt, fp16=False).onnx_precision == "fp32"


def test_profile_starts_at_one_window_and_covers_the_batch():
    trt = fake_tensorrt()
    plan = trt_backend.build_plan(trt, fp16=False, tf32=False)
    trt_backend.build_serialized(trt, b"onnx", PROFILE, plan, 1 << 20)
    profile = [call for call in trt.calls if call[0] == "profile"][0]
    assert profile[2] == (1, 2, 32, 32) and profile[3] == (1, 2, 256, 320) and profile[4] == (8, 2, 1024, 1280)
    assert ("clear_flag", 7) in trt.calls and "no_tf32" in plan.flags()


@pytest.mark.parametrize("trt,match", [
    (fake_tensorrt(build_result=None), "failed to build"),
    (fake_tensorrt(build_result=RuntimeError("out of memory")), "RuntimeError: out of memory"),
    (fake_tensorrt(parse_ok=False), "cannot parse.*unsupported"),
])
def test_every_builder_failure_is_a_backend_error(trt, match):
    with pytest.raises(BackendError, match=match):
        trt_backend.build_serialized(trt, b"onnx", PROFILE, trt_backend.build_plan(trt, fp16=True), 1 << 20)


def test_api_change_is_a_backend_error_not_an_attribute_error():
    trt = fake_tensorrt()
    del trt.MemoryPoolType
    with pytest.raises(BackendError, match="AttributeError"):
        trt_backend.build_serialized(trt, b"onnx", PROFILE, trt_backend.build_plan(trt, fp16=True), 1 << 20)


def test_io_dtypes_are_read_not_assumed():
    trt = fake_tensorrt()
    assert trt_backend.torch_dtype(trt, trt.DataType.HALF) == torch.float16
    assert trt_backend.torch_dtype(trt, trt.DataType.FLOAT) == torch.float32
    with pytest.raises(BackendError, match="not a float type"):
        trt_backend.torch_dtype(trt, trt.DataType.INT8)


def test_shape_checks_follow_the_profile():
    backend = trt_backend.TensorRTBackend.__new__(trt_backend.TensorRTBackend)  # shape rules need no engine
    backend.profile = PROFILE
    backend.check_shape((1, 2, 64, 80))  # a 320x256 frame at detector_scale 0.25
    backend.check_shape((8, 2, 1024, 1280))
    with pytest.raises(BackendError, match="max_batch"):
        backend.check_shape((9, 2, 64, 64))
    with pytest.raises(BackendError, match="outside the engine profile"):
        backend.check_shape((1, 2, 16, 64))
    assert backend.max_batch == 8


def test_a_failing_tensorrt_start_lets_auto_fall_back(fast_net, monkeypatch, caplog):
    """TensorRT importable and 'available', but starting it fails: ``auto`` must go on, logging why."""
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setattr(trt_backend, "tensorrt_unavailable_reason", lambda device: None)
    monkeypatch.setitem(trt_backend.register_backend.__globals__["_AVAILABILITY"], "tensorrt", lambda device: None)
    if torch.cuda.is_available():
        pytest.skip("with CUDA the fake module would be asked to build a real engine")
    with pytest.raises(BackendError, match="failed to start"):
        trt_backend.TensorRTBackend(fast_net, device="cuda")
    with caplog.at_level(logging.INFO, logger="ivif_ros.backends"):
        backend = create_backend("auto", model=fast_net, device="auto")
    assert backend.name != "tensorrt" and backend.device == "cpu"
    assert "tensorrt:cuda failed" in caplog.text
