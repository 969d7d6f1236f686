"""Registry of detector architectures (timm-style ``register_model`` / ``create_model``)."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["ModelError", "register_model", "create_model", "list_models", "is_model"]

_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


class ModelError(RuntimeError):
    """A detector cannot be built or loaded (unknown architecture, missing or corrupt weights)."""


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an architecture entrypoint under its function name.

    Args:
        fn: factory ``fn(**kwargs) -> nn.Module``.

    Returns:
        ``fn`` unchanged, so this works as a decorator.

    Raises:
        ModelError: if the name is already registered.
    """
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS:
        raise ModelError(f"model {name!r} is already registered")
    _MODEL_ENTRYPOINTS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered architectures, sorted."""
    return sorted(_MODEL_ENTRYPOINTS)


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered architecture."""
    return name in _MODEL_ENTRYPOINTS


def create_model(name: str, **kwargs) -> nn.Module:
    """Build an (untrained) architecture by name.

    Args:
        name: a name from :func:`list_models`, e.g. ``"fast"`` or ``"seed"``.
        **kwargs: forwarded to the architecture (e.g. ``stride=8``).

    Returns:
        The module, in training mode, with attributes ``window`` and ``stride``.

    Raises:
        ModelError: unknown name or bad keyword arguments.
    """
    if name not in _MODEL_ENTRYPOINTS:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    try:
        return _MODEL_ENTRYPOINTS[name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot create model {name!r} with {kwargs}: {exc}") from exc
