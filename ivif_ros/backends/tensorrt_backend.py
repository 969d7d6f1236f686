"""TensorRT backend: an engine built from the ONNX export, FP16, one optimisation profile.

Explicit parameters, as in Isaac ROS ``TensorRTNode``: the ONNX file (default: the cached export of
the model), the engine folder, ``force_rebuild`` and ``fp16``, plus the detector input resolutions
the optimisation profile must cover. Engines are cached by ``engine_cache.EngineKey`` (GPU name,
TensorRT version, ONNX sha256, profile shapes, precision); a cached engine is loaded at start, a
stale or corrupt one is rebuilt. Inference runs with ``execute_async_v3`` on torch CUDA tensors
(the buffers never leave the GPU) on torch's current stream.

When ``tensorrt`` is not importable or CUDA is missing, ``availability`` returns the reason (so
``auto`` skips it and logs why) and the constructor raises ``BackendError`` with the install hint.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .base import BackendError, DetectorBackend, register_backend
from .engine_cache import EngineCache, EngineKey, default_cache_dir, profile_from_resolutions, sha256_file

__all__ = ["TensorRTBackend", "has_tensorrt", "tensorrt_unavailable_reason", "DEFAULT_RESOLUTIONS", "INSTALL_HINT"]

LOGGER = logging.getLogger("ivif_ros.backends")

#: Detector input sizes (H, W) the default profile covers: 640x512 and 1280x1024 frames at
#: detector_scale 0.5 and 1.0. The first is the profile's ``opt`` shape.
DEFAULT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((256, 320), (512, 640), (1024, 1280))
INSTALL_HINT = (
    "install TensorRT for your CUDA version (e.g. pip install tensorrt-cu12, or the NVIDIA "
    "TensorRT/JetPack packages) on a machine with an NVIDIA driver and a CUDA build of torch"
)


def has_tensorrt() -> bool:
    """True when the ``tensorrt`` Python package imports (says nothing about a GPU)."""
    if importlib.util.find_spec("tensorrt") is None:
        return False
    try:
        import tensorrt  # noqa: F401
    except Exception:  # stub wheels raise at import when the native libraries are missing
        return False
    return True


def tensorrt_unavailable_reason(device: str = "auto") -> str | None:
    """None when the TensorRT backend can run on ``device``, else why not (with the install hint).

    Args:
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
    """
    if device == "cpu":
        return "TensorRT runs on CUDA devices only (device='cpu')"
    if not has_tensorrt():
        return f"the tensorrt Python package is not importable; {INSTALL_HINT}"
    import torch

    if not torch.cuda.is_available():
        return "CUDA is not available to torch (no NVIDIA driver/GPU, or a CPU-only torch build)"
    return None


def _trt_module():
    import tensorrt

    return tensorrt


def _build_serialized(trt: Any, onnx_path: Path, profile: tuple, fp16: bool, workspace_bytes: int) -> bytes:
    """Parse ``onnx_path`` and build a serialised engine with one optimisation profile."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    if explicit is not None and int(trt.__version__.split(".")[0]) < 10:
        flags = 1 << int(explicit)  # implicit batch was removed in TensorRT 10
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if fp16:
        if not builder.platform_has_fast_fp16:
            LOGGER.warning("this GPU has no fast FP16; building the engine in FP16 anyway")
        config.set_flag(trt.BuilderFlag.FP16)
    optimisation = builder.create_optimization_profile()
    optimisation.set_shape(network.get_input(0).name, *profile)
    config.add_optimization_profile(optimisation)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine from {onnx_path} (see the TensorRT log above)")
    return bytes(serialized)


@register_backend("tensorrt", tensorrt_unavailable_reason)
class TensorRTBackend(DetectorBackend):
    """Runs the detector as a TensorRT engine on a CUDA device.

    Args:
        model: detector ``nn.Module`` (window, stride; exported to ONNX unless ``onnx_path`` is given).
        device: ``auto`` or ``cuda[:N]``.
        onnx_path: ONNX file to build from (default: the cached export of ``model``).
        engine_dir: engine cache folder (default ``~/.cache/ivif_ros/tensorrt`` or ``$IVIF_CACHE_DIR/tensorrt``).
        force_rebuild: ignore a cached engine and build again.
        fp16: build with the FP16 flag (inputs and outputs stay float32).
        resolutions: detector input sizes (H, W) the optimisation profile covers; min/max are
            their element-wise extremes, the first is ``opt``. Inputs outside are refused.
        workspace_mb: builder workspace limit.

    Raises:
        BackendError: TensorRT or CUDA missing (with the install hint), a missing ``onnx_path``,
            or a failed parse/build.
    """

    name = "tensorrt"

    def __init__(
        self,
        model: Any,
        device: str = "auto",
        onnx_path: str | Path | None = None,
        engine_dir: str | Path | None = None,
        force_rebuild: bool = False,
        fp16: bool = True,
        resolutions: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS,
        workspace_mb: int = 1024,
    ) -> None:
        super().__init__(window=int(model.window), stride=int(model.stride))
        reason = tensorrt_unavailable_reason(device)
        if reason is not None:
            raise BackendError(f"tensorrt backend unavailable: {reason}")
        import torch

        trt = _trt_module()
        self._torch = torch
        self._device = torch.device("cuda" if device == "auto" else device)
        if self._device.index is None:
            self._device = torch.device("cuda", torch.cuda.current_device())
        self.device = str(self._device)
        self.fp16 = bool(fp16)
        try:
            self.profile = profile_from_resolutions(resolutions)
        except ValueError as error:
            raise BackendError(f"bad TensorRT resolutions: {error}") from error
        if onnx_path is None:
            from .onnx_backend import cached_onnx

            onnx_path = cached_onnx(model)
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise BackendError(f"ONNX file not found: {self.onnx_path} (set onnx_path, or leave it unset to export the model)")
        self.key = EngineKey(
            gpu_name=torch.cuda.get_device_name(self._device),
            trt_version=str(trt.__version__),
            onnx_sha256=sha256_file(self.onnx_path),
            profile=self.profile,
            precision="fp16" if self.fp16 else "fp32",
        )
        self.cache = EngineCache(engine_dir if engine_dir is not None else default_cache_dir("tensorrt"))
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        with torch.cuda.device(self._device):
            self._engine, self.built = self.cache.load_or_build(
                self.key,
                build=lambda: _build_serialized(trt, self.onnx_path, self.profile, self.fp16, workspace_mb << 20),
                deserialize=runtime.deserialize_cuda_engine,
                force_rebuild=force_rebuild,
            )
            self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"engine must have one input and one output, got {inputs} -> {outputs}")
        self._input, self._output = inputs[0], outputs[0]
        self.engine_path = self.cache.path_for(self.key)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        low, _, high = self.profile
        if len(shape) != 4 or shape[1] != 2:
            raise BackendError(f"pair must be (1, 2, H, W), got {tuple(shape)}")
        if not (low[2] <= shape[2] <= high[2] and low[3] <= shape[3] <= high[3]):
            raise BackendError(
                f"detector input {shape[2]}x{shape[3]} is outside the engine profile "
                f"{low[2]}x{low[3]}..{high[2]}x{high[3]}; add it to `resolutions` and rebuild"
            )

    def forward_tensor(self, pair):
        """Score a (1, 2, H, W) tensor; returns float32 (1, 1, nh, nw) on the engine's device.

        Runs on torch's current CUDA stream; no host synchronisation.
        """
        torch = self._torch
        self._check_shape(tuple(pair.shape))
        pair = pair.to(device=self._device, dtype=torch.float32, non_blocking=True).contiguous()
        self._context.set_input_shape(self._input, tuple(pair.shape))
        out_shape = tuple(self._context.get_tensor_shape(self._output))
        scores = torch.empty(out_shape, dtype=torch.float32, device=self._device)
        self._context.set_tensor_address(self._input, pair.data_ptr())
        self._context.set_tensor_address(self._output, scores.data_ptr())
        stream = torch.cuda.current_stream(self._device)
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise BackendError("TensorRT execute_async_v3 failed")
        return scores

    def __call__(self, pair: np.ndarray) -> np.ndarray:
        """Score a (1, 2, H, W) float32 pair; returns (1, 1, nh, nw) float32."""
        tensor = self._torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))
        return self.forward_tensor(tensor).cpu().numpy()

    def describe(self) -> dict[str, str]:
        """Backend, device, precision, profile and engine file."""
        low, opt, high = self.profile
        return {
            "backend": self.name,
            "device": self.device,
            "precision": "fp16" if self.fp16 else "fp32",
            "profile": f"{low[2]}x{low[3]}/{opt[2]}x{opt[3]}/{high[2]}x{high[3]}",
            "engine": str(self.engine_path),
            "built_now": str(self.built),
        }
