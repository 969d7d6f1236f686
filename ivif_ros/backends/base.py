"""The detector backend interface and its registry.

A backend runs a detector's dense ``forward``: float32 (1, 2, H, W) pairs in 0..1 → float32
(1, 1, nh, nw) window scores (log-odds that channel 0, the visible image, is the sharper one).
"""
from __future__ import annotations

import abc
import logging
from typing import Callable

import numpy as np

__all__ = ["BackendError", "DetectorBackend", "register_backend", "create_backend", "available_backends"]

LOGGER = logging.getLogger("ivif_ros.backends")


class BackendError(RuntimeError):
    """A backend cannot be created or cannot run; the message says what to install or set."""


class DetectorBackend(abc.ABC):
    """Runs one detector network. Subclasses set ``name`` and ``device``."""

    name: str = "abstract"
    device: str = "cpu"

    def __init__(self, window: int, stride: int) -> None:
        self.window = window
        self.stride = stride

    @abc.abstractmethod
    def __call__(self, pair: np.ndarray) -> np.ndarray:
        """Score a (1, 2, H, W) float32 pair; returns (1, 1, nh, nw) float32."""

    def describe(self) -> dict[str, str]:
        """Short facts for logs and diagnostics."""
        return {"backend": self.name, "device": self.device}


BackendFactory = Callable[..., DetectorBackend]
_REGISTRY: dict[str, BackendFactory] = {}
_AVAILABILITY: dict[str, Callable[[str], str | None]] = {}


def register_backend(name: str, availability: Callable[[str], str | None]) -> Callable[[BackendFactory], BackendFactory]:
    """Class decorator: register a backend factory under ``name``.

    ``availability(device)`` returns None when the backend can run on ``device``, else the reason.
    """

    def decorate(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[name] = factory
        _AVAILABILITY[name] = availability
        return factory

    return decorate


def _load_builtin_backends() -> None:
    from . import torch_backend  # noqa: F401  (registers "torch")

    for optional in ("onnx_backend", "tensorrt_backend"):
        try:
            __import__(f"{__package__}.{optional}")
        except ImportError as error:  # module not written or its library missing
            LOGGER.debug("backend module %s not loaded: %s", optional, error)


def available_backends(device: str = "auto") -> dict[str, str | None]:
    """Map every registered backend to None (usable) or the reason it is not usable."""
    _load_builtin_backends()
    return {name: check(device) for name, check in _AVAILABILITY.items()}


AUTO_ORDER = ("tensorrt", "torch")


def create_backend(name: str, model, device: str = "auto", **options) -> DetectorBackend:
    """Create a backend for ``model`` (an ``nn.Module`` following the detector contract).

    Args:
        name: ``"auto"`` or a registered name (``torch``, ``onnxruntime``, ``tensorrt``).
        model: the detector network (eval mode).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``.
        options: backend-specific keyword options.

    Raises:
        BackendError: unknown backend, or not usable here (the message says why).
    """
    _load_builtin_backends()
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER:
            if candidate not in _REGISTRY:
                reasons.append(f"{candidate}: not built in")
                continue
            reason = _AVAILABILITY[candidate](device)
            if reason is None:
                LOGGER.info("backend auto -> %s (%s)", candidate, "; ".join(reasons) or "first choice")
                return _REGISTRY[candidate](model, device=device, **options)
            reasons.append(f"{candidate}: {reason}")
        raise BackendError("no usable backend: " + "; ".join(reasons))
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend {name!r}; choose from auto, {', '.join(sorted(_REGISTRY))}")
    reason = _AVAILABILITY[name](device)
    if reason is not None:
        raise BackendError(f"backend {name!r} is not usable on device {device!r}: {reason}")
    return _REGISTRY[name](model, device=device, **options)
