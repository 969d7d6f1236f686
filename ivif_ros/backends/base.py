"""The detector backend interface and its registry.

A backend runs a detector's dense ``forward``: float32 (N, 2, H, W) pairs in 0..1 → float32
(N, 1, nh, nw) window scores (log-odds that channel 0, the visible image, is the sharper one);
N = 1 for a frame, N = B on the batched offline path.
"""
from __future__ import annotations

import abc
import inspect
import logging
from collections.abc import Callable

import numpy as np

__all__ = [
    "AUTO_ORDER", "BackendError", "DetectorBackend", "register_backend", "create_backend", "available_backends",
]

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
        """Score an (N, 2, H, W) float32 pair batch; returns (N, 1, nh, nw) float32."""

    def describe(self) -> dict[str, str]:
        """Short facts for logs and diagnostics."""
        return {"backend": self.name, "device": self.device}

    def forward_tensor(self, pair):
        """Score a torch pair tensor and return a torch tensor on the same device.

        The default goes through numpy (a host round trip); device backends (torch, TensorRT)
        override it so the CUDA-resident pipeline never leaves the GPU.

        Args:
            pair: float tensor (N, 2, H, W) in 0..1.

        Returns:
            float32 tensor (N, 1, nh, nw) on ``pair.device``.
        """
        import torch

        scores = self(pair.detach().float().cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(scores)).to(pair.device)


BackendFactory = Callable[..., DetectorBackend]
_REGISTRY: dict[str, BackendFactory] = {}
_AVAILABILITY: dict[str, Callable[[str], str | None]] = {}


def register_backend(
    name: str, availability: Callable[[str], str | None]
) -> Callable[[BackendFactory], BackendFactory]:
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


#: ``auto`` preference: ``name`` or ``name:kind``; a kind restricts the candidate to that device
#: family (tried with ``device="cuda"`` / ``"cpu"`` when the caller asked for ``auto``).
#: TensorRT > torch on CUDA > onnxruntime on CPU (several times faster than eager torch there) > torch on CPU.
AUTO_ORDER = ("tensorrt:cuda", "torch:cuda", "onnxruntime:cpu", "torch:cpu")


def _auto_candidates(device: str) -> list[tuple[str, str | None, str]]:
    """(backend, device to try or None, note) for each ``AUTO_ORDER`` entry."""
    candidates = []
    for entry in AUTO_ORDER:
        name, _, kind = entry.partition(":")
        if not kind:
            candidates.append((name, device, entry))
        elif device == "auto":
            candidates.append((name, kind, entry))
        elif device.split(":", 1)[0] == kind:
            candidates.append((name, device, entry))
        else:
            candidates.append((name, None, entry))
    return candidates


def _accepted_options(factory: BackendFactory, options: dict) -> dict:
    """The subset of ``options`` that ``factory`` takes (``auto`` may land on any backend)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return options
    dropped = sorted(set(options) - set(parameters))
    if dropped:
        LOGGER.debug("options %s do not apply to %s; ignored", dropped, getattr(factory, "__name__", factory))
    return {key: value for key, value in options.items() if key in parameters}


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
        for candidate, candidate_device, label in _auto_candidates(device):
            if candidate not in _REGISTRY:
                reasons.append(f"{label}: not built in")
                continue
            if candidate_device is None:
                reasons.append(f"{label}: device {device!r} requested")
                continue
            reason = _AVAILABILITY[candidate](candidate_device)
            if reason is None:
                factory = _REGISTRY[candidate]
                try:
                    backend = factory(model, device=candidate_device, **_accepted_options(factory, options))
                except BackendError as error:  # e.g. a TensorRT build failure: try the next candidate
                    LOGGER.warning("backend auto: %s failed (%s); trying the next candidate", label, error)
                    reasons.append(f"{label}: failed: {error}")
                    continue
                why = "; ".join(reasons) or "first choice"
                LOGGER.info("backend auto -> %s on %s (%s)", candidate, candidate_device, why)
                return backend
            reasons.append(f"{label}: {reason}")
        raise BackendError("no usable backend: " + "; ".join(reasons))
    if name not in _REGISTRY:
        raise BackendError(f"unknown backend {name!r}; choose from auto, {', '.join(sorted(_REGISTRY))}")
    reason = _AVAILABILITY[name](device)
    if reason is not None:
        raise BackendError(f"backend {name!r} is not usable on device {device!r}: {reason}")
    return _REGISTRY[name](model, device=device, **options)
