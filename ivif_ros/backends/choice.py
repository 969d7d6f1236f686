"""The detector choice (backend, device, model weights, backend options) shared by every front end.

``ivif-fuse``, ``ivif-bench``, ``ivif-eval``, ``ivif-bag fuse`` and the ROS node describe the detector
with one :class:`DetectorChoice`; :class:`DetectorLoader` turns it into ready backends (loading
weights on first use, one backend per mode) for ``ivif_ros.core.pipeline.FusionPipeline``, which
itself never imports ``backends`` or ``models``. ``create_pipeline`` is the one-line convenience.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from ivif_ros.core.config import FusionConfig
from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.settings import check_fields, setting, settings_of

__all__ = [
    "BACKEND_NAMES", "DetectorChoice", "DetectorLoader", "create_pipeline", "add_detector_arguments",
    "choice_from_arguments",
]

LOGGER = logging.getLogger("ivif_ros.backends")

BACKEND_NAMES = ("auto", "torch", "onnxruntime", "tensorrt")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _check_device(value: str) -> None:
    if not _DEVICE.match(value):
        raise FusionInputError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")


@dataclass(frozen=True)
class DetectorChoice:
    """Which detector runs and where.

    ``options`` are keyword options of the default-mode backend (e.g. ``intra_op_threads``,
    ``fp16``, ``cuda_graphs``; see ``ivif_ros.backends``); they are not node parameters.
    """

    backend: str = setting("auto", "detector backend", choices=BACKEND_NAMES)
    device: str = setting("auto", "detector device: auto, cpu or cuda[:N]", check=_check_device)
    model: str = setting("", "default-mode detector weights (.safetensors); empty = shipped default")
    seed_model: str = setting("", "seed-mode detector weights; empty = shipped seed weights")
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def validate(self) -> None:
        """Raises ``FusionInputError`` naming a bad backend or device."""
        check_fields(self)

    def model_spec(self, mode: str) -> str | None:
        """Weights to load for ``mode``: a path, ``"seed"`` (shipped seed weights) or None (shipped default)."""
        if mode == "seed":
            return self.seed_model or "seed"
        return self.model or None

    def for_mode(self, mode: str, model: str | None) -> DetectorChoice:
        """This choice with ``model`` as the weights of ``mode`` (a single ``--model`` option)."""
        if not model:
            return self
        return dataclasses.replace(self, **({"seed_model": model} if mode == "seed" else {"model": model}))


class DetectorLoader:
    """Ready backends for a :class:`DetectorChoice`, created on first request and kept.

    ``get(mode)`` returns the backend of ``mode`` (``"default"`` or ``"seed"``) with an added
    ``model_info`` attribute (``ivif_ros.models.ModelInfo``). Model and backend errors
    (``ModelError``, ``BackendError``) propagate with their messages.
    """

    def __init__(self, choice: DetectorChoice | None = None) -> None:
        self.choice = choice or DetectorChoice()
        self.choice.validate()
        self._backends: dict[str, Any] = {}

    def get(self, mode: str) -> Any:
        """The backend of ``mode``, loading weights and creating it on first use."""
        backend = self._backends.get(mode)
        if backend is None:
            from ivif_ros.backends.base import create_backend
            from ivif_ros.models import load_model

            net, info = load_model(self.choice.model_spec(mode))
            if mode == "seed" and hasattr(net, "votes"):
                net.votes = True  # the authors' per-window vote (ties go to visible)
            if not info.trained:
                LOGGER.warning(
                    "UNTRAINED %s detector in use (%s): weight maps are meaningless until trained weights are loaded",
                    mode, info.name,
                )
            name = "torch" if mode == "seed" and self.choice.backend == "auto" else self.choice.backend
            options = self.choice.options if mode == "default" else {}
            backend = create_backend(name, model=net, device=self.choice.device, **options)
            backend.model_info = info
            self._backends[mode] = backend
        return backend


def create_pipeline(config: FusionConfig | None = None, choice: DetectorChoice | None = None, **options: Any):
    """``FusionPipeline(config, DetectorLoader(choice), **options)``.

    The detector of the configured mode is loaded now.
    """
    from ivif_ros.core.pipeline import FusionPipeline

    return FusionPipeline(config, DetectorLoader(choice), **options)


def add_detector_arguments(parser: argparse.ArgumentParser, model_help: str | None = None) -> None:
    """``--backend``, ``--device`` and ``--model`` options, with help and choices from the schema."""
    meta = settings_of(DetectorChoice)
    parser.add_argument(
        "--backend", default="auto", choices=BACKEND_NAMES, help=f"{meta['backend'].help} (%(default)s)"
    )
    parser.add_argument("--device", default="auto", help=f"{meta['device'].help} (%(default)s)")
    parser.add_argument("--model", default=None, help=model_help or meta["model"].help)


def choice_from_arguments(args: argparse.Namespace, mode: str = "default", **extra: Any) -> DetectorChoice:
    """A :class:`DetectorChoice` from ``add_detector_arguments`` options; ``--model`` is the weights of ``mode``.

    Raises:
        FusionInputError: a bad backend or device (named).
    """
    choice = DetectorChoice(backend=args.backend, device=args.device, **extra).for_mode(mode, args.model)
    choice.validate()
    return choice

