"""onnxruntime backend: the detector's dense ``forward`` exported to ONNX (dynamic H and W).

The export needs only torch (``torch.onnx``, TorchScript exporter) and is cached on disk under
``<cache>/onnx/<arch>-<model fingerprint>-opset<N>.onnx``, so a second start loads the graph
without tracing. On CPU this backend is several times faster than eager torch for the small
``fast`` detector (fused kernels, no Python per layer), which is why ``auto`` prefers it on CPU.
"""
from __future__ import annotations

import copy
import importlib.util
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .base import BackendError, DetectorBackend, register_backend
from .engine_cache import default_cache_dir, model_fingerprint

__all__ = ["OnnxRuntimeBackend", "export_onnx", "cached_onnx", "has_onnxruntime", "DEFAULT_OPSET"]

LOGGER = logging.getLogger("ivif_ros.backends")

#: ONNX opset of the export (TensorRT 8.6+ and onnxruntime 1.16+ read it).
DEFAULT_OPSET = 17
INPUT_NAME = "pair"
OUTPUT_NAME = "scores"
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


def _wants_cuda(device: str) -> bool:
    return device.startswith("cuda")


def _onnx_availability(device: str) -> str | None:
    if not has_onnxruntime():
        return f"onnxruntime is not importable; {_INSTALL_HINT}"
    import onnxruntime

    if _wants_cuda(device) and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu for CUDA)"
    return None


def export_onnx(model: Any, path: str | Path, opset: int = DEFAULT_OPSET, example_size: tuple[int, int] = (128, 160)) -> Path:
    """Export a detector's dense ``forward`` to ONNX with dynamic height and width.

    The model is copied to CPU/fp32 first (the caller's module is not modified). The file is
    written atomically.

    Args:
        model: detector ``nn.Module`` (``forward(pair (N,2,H,W)) -> (N,1,nh,nw)``).
        path: output ``.onnx`` file (folders are created).
        opset: ONNX opset version.
        example_size: (H, W) of the tracing example (any size >= 32).

    Returns:
        The written path.

    Raises:
        BackendError: the export failed.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).float().cpu().eval()
    if getattr(net, "chunk", None) is not None:  # seed: one chunk, so the graph holds no size-dependent loop
        net.chunk = 1 << 30
    example = torch.rand(1, 2, *example_size)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".onnx")
    os.close(handle)
    kwargs: dict[str, Any] = dict(
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"}, OUTPUT_NAME: {0: "batch", 2: "rows", 3: "cols"}},
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


def cached_onnx(model: Any, cache_dir: str | Path | None = None, opset: int = DEFAULT_OPSET, refresh: bool = False) -> Path:
    """The ONNX export of ``model`` from the cache, exporting it on a miss.

    Args:
        model: detector ``nn.Module``.
        cache_dir: folder of exports (default ``default_cache_dir("onnx")``).
        opset: ONNX opset version (part of the file name).
        refresh: export again even when a cached file exists.

    Returns:
        Path of ``<arch>-<fingerprint16>-opset<N>.onnx``.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir("onnx")
    arch = type(model).__name__.lower()
    path = folder / f"{arch}-{model_fingerprint(model)[:16]}-opset{opset}.onnx"
    if refresh or not path.is_file():
        LOGGER.info("exporting %s to %s", arch, path)
        try:
            export_onnx(model, path, opset=opset)
        except OSError as error:  # read-only home (robots, containers): export to a temp folder
            if cache_dir is not None:
                raise BackendError(f"cannot write the ONNX cache {folder}: {error}") from error
            path = Path(tempfile.gettempdir()) / f"ivif_ros-onnx-{os.getuid()}" / path.name
            LOGGER.warning("ONNX cache %s not writable (%s); using %s", folder, error, path)
            if refresh or not path.is_file():
                export_onnx(model, path, opset=opset)
    return path


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
        self._model = model
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
            if not self._fixed_path.is_file():
                raise BackendError(f"ONNX file not found: {self._fixed_path} (set onnx_path to an exported model)")
            self.onnx_path = self._fixed_path
            return self._load(self._fixed_path)
        self.onnx_path = cached_onnx(self._model, self._cache_dir, self._opset)
        try:
            return self._load(self.onnx_path)
        except BackendError as error:  # a damaged cache file: export again once
            LOGGER.warning("cached ONNX %s unusable (%s); exporting again", self.onnx_path, error)
            self.onnx_path = cached_onnx(self._model, self._cache_dir, self._opset, refresh=True)
            return self._load(self.onnx_path)

    def _load(self, path: Path):
        try:
            return self._ort.InferenceSession(str(path), self._session_options(), providers=list(self._providers))
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError(f"onnxruntime cannot load {path}: {error}") from error

    def __call__(self, pair: np.ndarray) -> np.ndarray:
        """Score a (1, 2, H, W) float32 pair; returns (1, 1, nh, nw) float32."""
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

