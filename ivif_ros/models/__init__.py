"""Blur-detection models: registry, the ``seed`` and ``fast`` architectures, and weight loading.

Example:
    >>> from ivif_ros.models import create_model, load_model
    >>> net, info = load_model(None)   # shipped default (``fast``)
"""
from .fast import FastNet  # importing an architecture module registers it
from .features import normalize_paths, sobel_features
from .loading import DEFAULT_MODEL, WEIGHTS_DIR, ModelInfo, load_model, save_model, shipped_weights
from .registry import ModelError, create_model, is_model, list_models, register_model
from .seed import SeedNet

__all__ = [
    "DEFAULT_MODEL", "WEIGHTS_DIR", "FastNet", "ModelError", "ModelInfo", "SeedNet", "create_model", "is_model",
    "list_models", "load_model", "normalize_paths", "register_model", "save_model", "shipped_weights",
    "sobel_features",
]
