"""onnxruntime backend: the detector's dense ``forward`` exported to ONNX (dynamic H and W).

The export needs only torch (``torch.onnx``, TorchScript exporter) and is cached on disk as one
entry file ``<cache>/onnx/<arch>-<key16>-opset<N>-<precision>.onnxentry`` (``engine_cache``
trust rules: private folder, the key — model fingerprint plus this code's export settings — stored
in the same atomic file), so a second start loads the graph without tracing. On CPU this backend
is several times faster than eager torch for the small ``fast`` detector (fused kernels, no
Python per layer), which is why ``auto`` prefers it on CPU.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import BackendError, DetectorBackend, register_backend
from .engine_cache import (
    cache_lock,
    default_cache_dir,
    model_fingerprint,
    private_cache_dir,
    read_entry,
    sha256_bytes,
    write_entry,
)

__all__ = ["OnnxRuntimeBackend", "OnnxGraph", "export_onnx", "cached_onnx", "has_onnxruntime", "DEFAULT_OPSET"]

LOGGER = logging.getLogger("ivif_ros.backends")

#: ONNX opset of the export (TensorRT 8.6+ and onnxruntime 1.16+ read it).
DEFAULT_OPSET = 17
INPUT_NAME = "pair"
OUTPUT_NAME = "scores"
#: Version of this module's export recipe (tracing example, chunking, fp16 wrapper); part of the
#: cache key, so a change to the recipe never serves an export made by the old one.
EXPORT_RECIPE = 2
_INSTALL_HINT = "install it with: pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA)"


def has_onnxruntime() -> bool:
    """True when ``onnxruntime`` can be imported."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class HalfInside(torch.nn.Module):
    """float32 in → half network → float32 out (the casts become the graph's first and last nodes)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.net(pair.half()).float()


def _wants_cuda(device: str) -> bool:
    return device.startswith("cuda")


def _onnx_availability(device: str) -> str | None:
    if not has_onnxruntime():
        return f"onnxruntime is not importable; {_INSTALL_HINT}"
    import onnxruntime

    if _wants_cuda(device) and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu for CUDA)"
    return None


def export_onnx(
    model: Any,
    path: str | Path,
    opset: int = DEFAULT_OPSET,
    example_size: tuple[int, int] = (128, 160),
    precision: str = "fp32",
) -> Path:
    """Export a detector's dense ``forward`` to ONNX with dynamic batch, height and width.

    The model is copied to CPU first (the caller's module is not modified). The file is written
    atomically.

    Args:
        model: detector ``nn.Module`` (``forward(pair (N,2,H,W)) -> (N,1,nh,nw)``).
        path: output ``.onnx`` file (folders are created).
        opset: ONNX opset version.
        example_size: (H, W) of the tracing example (any size >= 32).
        precision: ``"fp32"``, or ``"fp16"``: half weights and arithmetic inside, float32 input and
            output (cast at the graph's edges) — what a strongly typed TensorRT network builds in fp16.

    Returns:
        The written path.

    Raises:
        BackendError: the export failed.
    """
    if precision not in ("fp32", "fp16"):
        raise BackendError(f"ONNX export precision must be fp32 or fp16, got {precision!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).float().cpu().eval()
    if getattr(net, "chunk", None) is not None:  # seed: one chunk, so the graph holds no size-dependent loop
        net.chunk = 1 << 30
    if precision == "fp16":
        net = HalfInside(net.half())
    example = torch.rand(1, 2, *example_size)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".onnx")
    os.close(handle)
    kwargs: dict[str, Any] = dict(
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={
            INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
            OUTPUT_NAME: {0: "batch", 2: "rows", 3: "cols"},
        },
        opset_version=opset,
        do_constant_folding=True,
    )
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(net, (example,), tmp, dynamo=False, **kwargs)
            except TypeError:  # torch < 2.5 has no ``dynamo`` argument
                torch.onnx.export(net, (example,), tmp, **kwargs)
        os.replace(tmp, path)
    except Exception as error:
        Path(tmp).unlink(missing_ok=True)
        raise BackendError(f"ONNX export of {type(model).__name__} failed: {error}") from error
    return path


@dataclass(frozen=True)
class OnnxGraph:
    """An ONNX graph in memory with where it came from.

    Attributes:
        path: the cache entry (or the user's ``.onnx`` file) it was read from.
        data: the serialised ONNX model (``onnxruntime.InferenceSession`` and the TensorRT parser take bytes).
        sha256: sha256 of ``data``.
    """

    path: Path
    data: bytes
    sha256: str

    @classmethod
    def from_file(cls, path: str | Path) -> OnnxGraph:
        """A plain ``.onnx`` file given by the user.

        Raises:
            BackendError: the file is missing or unreadable.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise BackendError(
                f"ONNX file not found or unreadable: {path} ({error}); set onnx_path to an exported model"
            ) from error
        return cls(path, data, sha256_bytes(data))


def export_key(model: Any, opset: int, precision: str) -> dict[str, Any]:
    """What an ONNX export depends on: the model's fingerprint and this code's export settings."""
    return {
        "model_sha256": model_fingerprint(model),
        "opset": int(opset),
        "precision": precision,
        "recipe": EXPORT_RECIPE,
        "torch": torch.__version__.split("+")[0],
        "dynamic_axes": "batch,height,width",
    }


def _fallback_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"ivif_ros-onnx-{os.getuid()}"


def cached_onnx(
    model: Any,
    cache_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    refresh: bool = False,
    precision: str = "fp32",
) -> OnnxGraph:
    """The ONNX export of ``model`` from the cache, exporting it on a miss.

    The cache folder is private (mode 0700; refused — logged, and a private temporary folder used
    instead — when owned by someone else or writable by others). An entry is served only when its
    stored key equals ``export_key`` (model fingerprint, opset, precision, export recipe, torch
    version) and its payload hash matches; otherwise the reason is logged and it is exported again.

    Args:
        model: detector ``nn.Module``.
        cache_dir: folder of exports (default ``default_cache_dir("onnx")``; when that cannot be
            created, ``/tmp/ivif_ros-onnx-<uid>`` under the same rules).
        opset: ONNX opset version.
        refresh: export again even when a valid entry exists.
        precision: ``fp32`` or ``fp16`` (see ``export_onnx``).

    Returns:
        The graph (bytes, sha256, entry path).

    Raises:
        BackendError: the export failed, or an explicit ``cache_dir`` cannot be created.
    """
    if cache_dir is not None:
        try:
            folder = private_cache_dir(cache_dir, "onnx")
        except OSError as error:
            raise BackendError(f"cannot create the ONNX cache {cache_dir}: {error}") from error
    else:
        try:
            folder = private_cache_dir(default_cache_dir("onnx"), "onnx")
        except OSError as error:  # read-only home (robots, containers)
            LOGGER.warning(
                "ONNX cache %s not writable (%s); using %s", default_cache_dir("onnx"), error, _fallback_folder()
            )
            folder = private_cache_dir(_fallback_folder(), "onnx")
    key = export_key(model, opset, precision)
    arch = type(model).__name__.lower()
    digest = sha256_bytes(json.dumps(key, sort_keys=True).encode())
    path = folder / f"{arch}-{digest[:16]}-opset{opset}-{precision}.onnxentry"
    with cache_lock(folder, path.stem):
        if not refresh:
            data, reason = read_entry(path, key)
            if data is not None:
                return OnnxGraph(path, data, sha256_bytes(data))
            if reason != "missing":
                LOGGER.warning("cached ONNX %s not used: %s; exporting again", path, reason)
        LOGGER.info("exporting %s (%s) to %s", arch, precision, path)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as scratch:
            data = export_onnx(model, Path(scratch) / "graph.onnx", opset=opset, precision=precision).read_bytes()
        write_entry(path, key, data)
    return OnnxGraph(path, data, sha256_bytes(data))


@register_backend("onnxruntime", _onnx_availability)
class OnnxRuntimeBackend(DetectorBackend):
    """Runs the exported detector with onnxruntime (CPU, or the CUDA provider when installed).

    Args:
        model: detector ``nn.Module``; exported (or taken from the cache) unless ``onnx_path`` is set.
        device: ``auto`` (CUDA provider when present, else CPU), ``cpu`` or ``cuda[:N]``.
        onnx_path: use this ONNX file instead of exporting ``model`` (its window/stride still come
            from ``model``).
        cache_dir: folder of cached exports (default ``~/.cache/ivif_ros/onnx`` or ``$IVIF_CACHE_DIR/onnx``).
        intra_op_threads: onnxruntime intra-op threads. Default 1: the detector at reduced
            resolution is small, and onnxruntime's spinning pool (None = its default, one thread per
            core) starves the OpenCV stages of the same frame; on the 2-core reference machine 1
            thread doubled full-pipeline pairs/s (docs/speed.md).
        inter_op_threads: inter-op threads (the graph is a chain; 1 is right).
        spinning: let idle intra-op threads spin (onnxruntime's default); False frees the cores
            between calls, which helps when other processes (the ROS executor, OpenCV) share them.
        opset: ONNX opset of the export.

    Raises:
        BackendError: onnxruntime missing, CUDA provider requested but absent, or the graph does not load.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model: Any,
        device: str = "auto",
        onnx_path: str | Path | None = None,
        cache_dir: str | Path | None = None,
        intra_op_threads: int | None = 1,
        inter_op_threads: int = 1,
        spinning: bool = True,
        opset: int = DEFAULT_OPSET,
    ) -> None:
        super().__init__(window=int(model.window), stride=int(model.stride))
        reason = _onnx_availability(device)
        if reason is not None:
            raise BackendError(reason)
        import onnxruntime

        self._ort = onnxruntime
        self._model = copy.deepcopy(model)  # set_stride changes the copy, never the caller's module
        self._cache_dir = cache_dir
        self._opset = opset
        self._fixed_path = Path(onnx_path) if onnx_path is not None else None
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.spinning = bool(spinning)
        use_cuda = _wants_cuda(device) or (
            device == "auto" and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        )
        if use_cuda:
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            self._providers: Sequence[Any] = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
            self.device = f"cuda:{index}"
        else:
            self._providers = ["CPUExecutionProvider"]
            self.device = "cpu"
        self._session = self._open()

    def _session_options(self):
        options = self._ort.SessionOptions()
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        if self.intra_op_threads is not None:
            options.intra_op_num_threads = int(self.intra_op_threads)
        options.inter_op_num_threads = int(self.inter_op_threads)
        options.log_severity_level = 3
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return options

    def _open(self):
        if self._fixed_path is not None:
            graph = OnnxGraph.from_file(self._fixed_path)
            self.onnx_path = graph.path
            return self._load(graph)
        graph = cached_onnx(self._model, self._cache_dir, self._opset)
        self.onnx_path = graph.path
        try:
            return self._load(graph)
        except BackendError as error:  # an entry that passed its checks but does not load: export again once
            LOGGER.warning("cached ONNX %s unusable (%s); exporting again", graph.path, error)
            graph = cached_onnx(self._model, self._cache_dir, self._opset, refresh=True)
            return self._load(graph)

    def _load(self, graph: OnnxGraph):
        try:
            return self._ort.InferenceSession(graph.data, self._session_options(), providers=list(self._providers))
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError(f"onnxruntime cannot load {graph.path}: {error}") from error

    def __call__(self, pair: np.ndarray) -> np.ndarray:
        """Score an (N, 2, H, W) float32 pair batch; returns (N, 1, nh, nw) float32."""
        pair = np.ascontiguousarray(pair, dtype=np.float32)
        if pair.ndim != 4 or pair.shape[1] != 2 or min(pair.shape[2:]) < self.window:
            raise BackendError(f"pair must be (N, 2, H, W) with H, W >= {self.window}, got {pair.shape}")
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: pair})[0]

    def set_stride(self, stride: int) -> None:
        """Change the dense stride (re-exports the graph; the stride is baked into the pooling).

        Raises:
            BackendError: the stride does not divide the window, the model refuses it, or the
                backend was built from a fixed ``onnx_path``.
        """
        if stride == self.stride:
            return
        if self._fixed_path is not None:
            raise BackendError("cannot change the stride of a fixed onnx_path graph; export it again")
        if self.window % stride:
            raise BackendError(f"stride {stride} does not divide the window {self.window}")
        try:
            self._model.stride = stride
        except ValueError as error:
            raise BackendError(str(error)) from error
        self.stride = stride
        self._session = self._open()

    def describe(self) -> dict[str, str]:
        """Backend, device, provider, thread settings and graph file."""
        return {
            "backend": self.name,
            "device": self.device,
            "precision": "fp32",
            "providers": ",".join(self._session.get_providers()),
            "intra_op_threads": str(self.intra_op_threads if self.intra_op_threads is not None else "default"),
            "spinning": str(self.spinning),
            "onnx": str(self.onnx_path),
        }

