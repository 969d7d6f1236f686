"""PyTorch backend (CPU, or CUDA with optional fp16)."""
from __future__ import annotations

import copy

import numpy as np
import torch

from .base import BackendError, DetectorBackend, register_backend

__all__ = ["TorchBackend", "resolve_torch_device"]


def resolve_torch_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise BackendError(f"invalid torch device {device!r}: {error}") from error


def _torch_availability(device: str) -> str | None:
    resolved = resolve_torch_device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        return "CUDA requested but torch.cuda.is_available() is False"
    return None


@register_backend("torch", _torch_availability)
class TorchBackend(DetectorBackend):
    """Runs a private copy of the network with torch; fp16 on CUDA by default.

    The caller's module is never modified (it is deep-copied before ``.to``/``.half``), so one
    module can feed several backends (fp32 and fp16 rows of ``ivif-bench``, the ONNX export).
    On CUDA the calls through ``__call__`` run on the backend's own stream (never the legacy
    default stream); ``forward_tensor`` runs on the caller's current stream, which the CUDA frame
    path sets to its own.

    Args:
        model: detector ``nn.Module``.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        fp16: half precision (default: on CUDA only).
        channels_last: NHWC memory format (default off: the 2-channel input is sliced into two
            1-channel images at once, so NHWC only adds layout copies; on CPU it measured no faster,
            docs/speed.md).
        cuda_graphs: capture one CUDA graph per input shape and replay it (CUDA only; removes
            the per-layer launch overhead that dominates a small network at high frame rates).
        threads: ``torch.set_num_threads`` for CPU inference (None = leave torch's setting).

    Raises:
        BackendError: ``cuda_graphs`` requested on a non-CUDA device.
    """

    name = "torch"
    #: CUDA graphs kept per backend (one per distinct input shape).
    MAX_GRAPHS = 8

    def __init__(
        self,
        model: torch.nn.Module,
        device: str = "auto",
        fp16: bool | None = None,
        channels_last: bool | None = None,
        cuda_graphs: bool = False,
        threads: int | None = None,
    ) -> None:
        super().__init__(window=int(model.window), stride=int(model.stride))
        self._device = resolve_torch_device(device)
        self.device = str(self._device)
        on_cuda = self._device.type == "cuda"
        if cuda_graphs and not on_cuda:
            raise BackendError(f"cuda_graphs needs a CUDA device, got {self.device!r}")
        self.fp16 = on_cuda if fp16 is None else bool(fp16)
        self.channels_last = bool(channels_last)
        self.cuda_graphs = bool(cuda_graphs)
        self.threads = threads
        if threads is not None:
            torch.set_num_threads(int(threads))
        self._model = copy.deepcopy(model).eval().to(self._device)
        if self.fp16:
            self._model = self._model.half()
        if self.channels_last:
            self._model = self._model.to(memory_format=torch.channels_last)
        self._dtype = torch.float16 if self.fp16 else torch.float32
        self._graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}
        self._stream = torch.cuda.Stream(device=self._device) if on_cuda else None

    def _prepare(self, pair: torch.Tensor) -> torch.Tensor:
        pair = pair.to(device=self._device, dtype=self._dtype, non_blocking=True)
        if self.channels_last:
            pair = pair.contiguous(memory_format=torch.channels_last)
        return pair

    def _graphed(self, pair: torch.Tensor) -> torch.Tensor:
        """Replay (capturing on first use) the CUDA graph for ``pair``'s shape."""
        key = tuple(pair.shape)
        entry = self._graphs.get(key)
        if entry is None:
            if len(self._graphs) >= self.MAX_GRAPHS:
                self._graphs.pop(next(iter(self._graphs)))
            static_in = pair.clone()
            side = torch.cuda.Stream(device=self._device)
            side.wait_stream(torch.cuda.current_stream(self._device))
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(3):  # warm-up on a side stream, as torch.cuda.graph requires
                    self._model(static_in)
            torch.cuda.current_stream(self._device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), torch.no_grad():
                static_out = self._model(static_in)
            entry = (graph, static_in, static_out)
            self._graphs[key] = entry
        graph, static_in, static_out = entry
        static_in.copy_(pair)
        graph.replay()
        return static_out.clone()

    def forward_tensor(self, pair: torch.Tensor) -> torch.Tensor:
        """Score an (N, 2, H, W) tensor on the backend's device; returns float32 (N, 1, nh, nw) there."""
        prepared = self._prepare(pair)
        if self.cuda_graphs:
            return self._graphed(prepared).float()
        with torch.inference_mode():
            return self._model(prepared).float()

    def __call__(self, pair: np.ndarray) -> np.ndarray:
        """Score an (N, 2, H, W) float32 pair batch; returns (N, 1, nh, nw) float32."""
        tensor = torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))
        if self._stream is None:
            return self.forward_tensor(tensor).numpy()
        with torch.cuda.stream(self._stream):
            return self.forward_tensor(tensor).cpu().numpy()

    def set_stride(self, stride: int) -> None:
        """Change the dense window stride (models whose stride is a free parameter, e.g. ``seed``)."""
        if self.window % stride:
            raise BackendError(f"stride {stride} does not divide the window {self.window}")
        self._model.stride = stride
        self.stride = stride
        self._graphs.clear()

    def describe(self) -> dict[str, str]:
        """Backend, device, precision, memory format, CUDA graphs and thread count."""
        return {
            "backend": self.name,
            "device": self.device,
            "precision": "fp16" if self.fp16 else "fp32",
            "channels_last": str(self.channels_last),
            "cuda_graphs": str(self.cuda_graphs),
            "threads": str(torch.get_num_threads()),
        }
