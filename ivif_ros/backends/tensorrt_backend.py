"""TensorRT backend: an engine built from the ONNX export, FP16, one optimisation profile.

Explicit parameters, as in Isaac ROS ``TensorRTNode``: the ONNX file (default: the cached export of
the model), the engine folder, ``force_rebuild`` and ``fp16``, plus the detector input resolutions
and the largest batch the optimisation profile must cover. Engines are cached by
``engine_cache.EngineKey`` (GPU, compute capability, CUDA major, TensorRT version, ONNX sha256,
profile, precision, builder flags); a cached engine is loaded at start, a stale or corrupt one is
rebuilt, and the load-or-build holds an inter-process lock.

TensorRT 8.6 to 11: precision is chosen by feature detection, never by version number. Where the
network can be created strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, TensorRT
≥ 9), FP16 comes from an fp16 ONNX export (half arithmetic inside, float32 at the edges) and no
weak-typing flag is used — ``BuilderFlag.FP16`` and ``platform_has_fast_fp16`` are gone in
TensorRT 11. Only a TensorRT without strong typing gets ``BuilderFlag.FP16``. I/O dtypes are read
from the engine (``get_tensor_dtype``), never assumed. Every failure while building or loading is a
``BackendError`` with the reason, so ``auto`` falls back and logs why.

Inference runs with ``execute_async_v3`` on torch CUDA tensors (the buffers never leave the GPU) on
torch's current stream when the caller made one current (the CUDA frame path does), else on the
backend's own stream, ordered against the caller's stream with events: never on the legacy
default stream, where TensorRT would add its own synchronisation.

When ``tensorrt`` is not importable or CUDA is missing, ``availability`` returns the reason (so
``auto`` skips it and logs why) and the constructor raises ``BackendError`` with the install hint.
"""
from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import BackendError, DetectorBackend, register_backend
from .engine_cache import EngineCache, EngineKey, default_cache_dir, profile_from_resolutions

__all__ = [
    "TensorRTBackend", "BuildPlan", "build_plan", "build_serialized", "has_tensorrt",
    "tensorrt_unavailable_reason", "DEFAULT_RESOLUTIONS", "DEFAULT_MAX_BATCH", "INSTALL_HINT",
]

LOGGER = logging.getLogger("ivif_ros.backends")

#: Detector input sizes (H, W) the default profile covers: 640x512 and 1280x1024 frames at
#: detector_scale 0.5 and 1.0. The first is the profile's ``opt`` shape; the minimum is always
#: one 32x32 window (any smaller detector_scale still fits).
DEFAULT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((256, 320), (512, 640), (1024, 1280))
#: Largest batch of the default profile (the batched offline path sends up to this many pairs).
DEFAULT_MAX_BATCH = 8
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


@dataclass(frozen=True)
class BuildPlan:
    """How an engine is built on this TensorRT.

    Attributes:
        onnx_precision: precision of the ONNX export to build from (``fp16`` for strong typing).
        strongly_typed: create the network with ``STRONGLY_TYPED`` (precision from the graph).
        fp16_flag: set ``BuilderFlag.FP16`` (weakly typed networks only).
        tf32: allow TF32 for float32 convolutions/matmuls (TensorRT's default; off for parity tests).
    """

    onnx_precision: str
    strongly_typed: bool
    fp16_flag: bool
    tf32: bool = True

    def flags(self) -> tuple[str, ...]:
        """Names for the engine key."""
        names = ["strongly_typed" if self.strongly_typed else "weakly_typed"]
        if self.fp16_flag:
            names.append("fp16_flag")
        names.append("tf32" if self.tf32 else "no_tf32")
        return tuple(names)


def build_plan(trt: Any, fp16: bool, tf32: bool = True) -> BuildPlan:
    """Choose strong typing or the FP16 flag by what this ``tensorrt`` module has.

    Raises:
        BackendError: FP16 asked for on a TensorRT with neither strong typing nor ``BuilderFlag.FP16``.
    """
    strongly = hasattr(getattr(trt, "NetworkDefinitionCreationFlag", None), "STRONGLY_TYPED")
    if strongly:
        return BuildPlan(onnx_precision="fp16" if fp16 else "fp32", strongly_typed=True, fp16_flag=False, tf32=tf32)
    if fp16 and not hasattr(getattr(trt, "BuilderFlag", None), "FP16"):
        raise BackendError(
            f"TensorRT {getattr(trt, '__version__', '?')} has neither strongly typed networks nor "
            "BuilderFlag.FP16; use fp16=False"
        )
    return BuildPlan(onnx_precision="fp32", strongly_typed=False, fp16_flag=bool(fp16), tf32=tf32)


def build_serialized(
    trt: Any, onnx: bytes, profile: tuple, plan: BuildPlan, workspace_bytes: int, label: str = ""
) -> bytes:
    """Parse the ONNX graph and build a serialised engine with one optimisation profile.

    Args:
        trt: the ``tensorrt`` module.
        onnx: serialised ONNX model.
        profile: (min, opt, max) input shapes.
        plan: typing and flags (``build_plan``).
        workspace_bytes: builder workspace limit.
        label: where the graph came from, for messages.

    Raises:
        BackendError: any failure of the parser or the builder, with TensorRT's message.
    """
    try:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        creation = trt.NetworkDefinitionCreationFlag
        flags = 0
        explicit = getattr(creation, "EXPLICIT_BATCH", None)
        if explicit is not None and int(str(trt.__version__).split(".")[0]) < 10:
            flags |= 1 << int(explicit)  # implicit batch was removed in TensorRT 10
        if plan.strongly_typed:
            flags |= 1 << int(creation.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"TensorRT cannot parse the ONNX graph {label}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
        if plan.fp16_flag:
            config.set_flag(trt.BuilderFlag.FP16)
        if not plan.tf32 and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)
        optimisation = builder.create_optimization_profile()
        optimisation.set_shape(network.get_input(0).name, *profile)
        if config.add_optimization_profile(optimisation) < 0:
            raise BackendError(f"TensorRT refused the optimisation profile {profile}")
        serialized = builder.build_serialized_network(network, config)
    except BackendError:
        raise
    except Exception as error:  # AttributeError on an API change, TypeError, TensorRT's RuntimeErrors
        raise BackendError(f"TensorRT engine build failed ({type(error).__name__}: {error})") from error
    if serialized is None:
        raise BackendError(f"TensorRT failed to build an engine from {label} (see the TensorRT log above)")
    return bytes(serialized)


def torch_dtype(trt: Any, data_type: Any):
    """The torch dtype of a TensorRT ``DataType``.

    Raises:
        BackendError: a type the detector's I/O cannot use.
    """
    import torch

    names = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16}
    for name, dtype in names.items():
        if hasattr(trt.DataType, name) and data_type == getattr(trt.DataType, name):
            return dtype
    raise BackendError(f"engine tensor type {data_type} is not a float type")


@register_backend("tensorrt", tensorrt_unavailable_reason)
class TensorRTBackend(DetectorBackend):
    """Runs the detector as a TensorRT engine on a CUDA device.

    Args:
        model: detector ``nn.Module`` (window, stride; exported to ONNX unless ``onnx_path`` is given).
        device: ``auto`` or ``cuda[:N]``.
        onnx_path: ONNX file to build from (default: the cached export of ``model`` in the precision
            the build plan needs).
        engine_dir: engine cache folder (default ``~/.cache/ivif_ros/tensorrt`` or ``$IVIF_CACHE_DIR/tensorrt``).
        force_rebuild: ignore a cached engine and build again.
        fp16: half-precision engine (inputs and outputs stay float32).
        resolutions: detector input sizes (H, W) the optimisation profile covers; the minimum is one
            32x32 window, the maximum their element-wise extremes, the first is ``opt``.
        max_batch: largest batch (pairs per call) the profile covers.
        workspace_mb: builder workspace limit.
        tf32: allow TF32 in float32 layers (TensorRT's default); parity tests turn it off.

    Raises:
        BackendError: TensorRT or CUDA missing (with the install hint), a missing ``onnx_path``, or
            any failure while exporting, building, loading or binding the engine.
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
        max_batch: int = DEFAULT_MAX_BATCH,
        workspace_mb: int = 1024,
        tf32: bool = True,
    ) -> None:
        super().__init__(window=int(model.window), stride=int(model.stride))
        reason = tensorrt_unavailable_reason(device)
        if reason is not None:
            raise BackendError(f"tensorrt backend unavailable: {reason}")
        self.fp16 = bool(fp16)
        try:
            self.profile = profile_from_resolutions(resolutions, max_batch=max_batch, min_side=self.window)
        except ValueError as error:
            raise BackendError(f"bad TensorRT resolutions: {error}") from error
        try:
            self._setup(model, device, onnx_path, engine_dir, force_rebuild, workspace_mb, tf32)
        except BackendError:
            raise
        except Exception as error:  # CUDA/TensorRT runtime errors, API changes: let ``auto`` fall back
            raise BackendError(f"tensorrt backend failed to start ({type(error).__name__}: {error})") from error

    def _setup(self, model, device, onnx_path, engine_dir, force_rebuild, workspace_mb, tf32) -> None:
        import torch

        from .onnx_backend import OnnxGraph, cached_onnx

        trt = _trt_module()
        self._torch = torch
        self._device = torch.device("cuda" if device == "auto" else device)
        if self._device.index is None:
            self._device = torch.device("cuda", torch.cuda.current_device())
        self.device = str(self._device)
        self.plan = build_plan(trt, self.fp16, tf32)
        if onnx_path is None:
            graph = cached_onnx(model, precision=self.plan.onnx_precision)
        else:
            graph = OnnxGraph.from_file(onnx_path)
            if self.plan.strongly_typed:
                LOGGER.warning(
                    "strongly typed TensorRT: the precision of %s is the graph's own (fp16=%s does not change it)",
                    onnx_path, self.fp16,
                )
        self.onnx_path = graph.path
        major, minor = torch.cuda.get_device_capability(self._device)
        self.key = EngineKey(
            gpu_name=torch.cuda.get_device_name(self._device),
            trt_version=str(trt.__version__),
            onnx_sha256=graph.sha256,
            profile=self.profile,
            precision="fp16" if self.fp16 else "fp32",
            compute_capability=f"{major}.{minor}",
            cuda_major=str(torch.version.cuda or "").split(".")[0],
            builder_flags=self.plan.flags(),
        )
        self.cache = EngineCache(engine_dir if engine_dir is not None else default_cache_dir("tensorrt"))
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        with torch.cuda.device(self._device):
            self._engine, self.built = self.cache.load_or_build(
                self.key,
                build=lambda: build_serialized(
                    trt, graph.data, self.profile, self.plan, workspace_mb << 20, str(graph.path)
                ),
                deserialize=runtime.deserialize_cuda_engine,
                force_rebuild=force_rebuild,
            )
            self._context = self._engine.create_execution_context()
            self._stream = torch.cuda.Stream(device=self._device)
        if self._context is None:
            raise BackendError("TensorRT could not create an execution context (GPU memory?)")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"engine must have one input and one output, got {inputs} -> {outputs}")
        self._input, self._output = inputs[0], outputs[0]
        self._input_dtype = torch_dtype(trt, self._engine.get_tensor_dtype(self._input))
        self._output_dtype = torch_dtype(trt, self._engine.get_tensor_dtype(self._output))
        self.engine_path = self.cache.path_for(self.key)

    @property
    def max_batch(self) -> int:
        """Largest batch the engine's profile accepts."""
        return int(self.profile[2][0])

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Refuse an input the engine's profile does not cover.

        Raises:
            BackendError: not (N, 2, H, W), N above ``max_batch``, or H/W outside the profile.
        """
        low, _, high = self.profile
        if len(shape) != 4 or shape[1] != 2 or shape[0] < 1:
            raise BackendError(f"pair must be (N, 2, H, W), got {tuple(shape)}")
        if shape[0] > high[0]:
            raise BackendError(
                f"batch {shape[0]} exceeds the engine profile's max_batch {high[0]}; raise max_batch and rebuild"
            )
        if not (low[2] <= shape[2] <= high[2] and low[3] <= shape[3] <= high[3]):
            raise BackendError(
                f"detector input {shape[2]}x{shape[3]} is outside the engine profile "
                f"{low[2]}x{low[3]}..{high[2]}x{high[3]}; add it to `resolutions` and rebuild"
            )

    def forward_tensor(self, pair):
        """Score an (N, 2, H, W) tensor; returns float32 (N, 1, nh, nw) on the engine's device.

        Enqueued on the caller's current stream, or on the backend's own stream (ordered with
        events) when the current one is the legacy default stream; no host synchronisation.

        Raises:
            BackendError: shape outside the profile, a refused input shape, or a failed enqueue.
        """
        torch = self._torch
        self.check_shape(tuple(pair.shape))
        caller = torch.cuda.current_stream(self._device)
        own = caller == torch.cuda.default_stream(self._device)
        stream = self._stream if own else caller
        if own:
            stream.wait_stream(caller)
        with torch.cuda.stream(stream):
            pair = pair.to(device=self._device, dtype=self._input_dtype, non_blocking=True).contiguous()
            if not self._context.set_input_shape(self._input, tuple(pair.shape)):
                raise BackendError(f"TensorRT refused the input shape {tuple(pair.shape)}")
            out_shape = tuple(self._context.get_tensor_shape(self._output))
            if any(side < 0 for side in out_shape):
                raise BackendError(f"TensorRT could not infer the output shape for input {tuple(pair.shape)}")
            scores = torch.empty(out_shape, dtype=self._output_dtype, device=self._device)
            self._context.set_tensor_address(self._input, pair.data_ptr())
            self._context.set_tensor_address(self._output, scores.data_ptr())
            if not self._context.execute_async_v3(stream.cuda_stream):
                raise BackendError("TensorRT execute_async_v3 failed")
            scores = scores.float()
        if own:
            caller.wait_stream(stream)
            pair.record_stream(stream)
            scores.record_stream(caller)
        return scores

    def __call__(self, pair: np.ndarray) -> np.ndarray:
        """Score an (N, 2, H, W) float32 pair batch; returns (N, 1, nh, nw) float32."""
        tensor = self._torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))
        return self.forward_tensor(tensor).cpu().numpy()

    def describe(self) -> dict[str, str]:
        """Backend, device, precision, build plan, profile and engine file."""
        low, opt, high = self.profile
        return {
            "backend": self.name,
            "device": self.device,
            "precision": "fp16" if self.fp16 else "fp32",
            "build": ",".join(self.plan.flags()),
            "profile": f"{low[2]}x{low[3]}/{opt[2]}x{opt[3]}/{high[2]}x{high[3]} batch<={high[0]}",
            "engine": str(self.engine_path),
            "built_now": str(self.built),
        }
