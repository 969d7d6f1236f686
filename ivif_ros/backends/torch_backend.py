"""PyTorch backend (CPU, or CUDA with optional fp16)."""
from __future__ import annotations

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
    """Runs the network with torch; fp16 on CUDA by default."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: str = "auto", fp16: bool | None = None) -> None:
        super().__init__(window=int(model.window), stride=int(model.stride))
        self._device = resolve_torch_device(device)
        self.device = str(self._device)
        self.fp16 = self._device.type == "cuda" if fp16 is None else fp16
        self._model = model.eval().to(self._device)
        if self.fp16:
            self._model = self._model.half()

    @torch.inference_mode()
    def __call__(self, pair: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32)).to(self._device)
        if self.fp16:
            tensor = tensor.half()
        return self._model(tensor).float().cpu().numpy()

    def set_stride(self, stride: int) -> None:
        """Change the dense window stride (models whose stride is a free parameter, e.g. ``seed``)."""
        if self.window % stride:
            raise BackendError(f"stride {stride} does not divide the window {self.window}")
        self._model.stride = stride
        self.stride = stride

    def describe(self) -> dict[str, str]:
        return {"backend": self.name, "device": self.device, "precision": "fp16" if self.fp16 else "fp32"}
