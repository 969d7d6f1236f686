"""Detector inference backends behind one interface (see ``base``)."""
from .base import BackendError, DetectorBackend, available_backends, create_backend, register_backend

__all__ = ["BackendError", "DetectorBackend", "available_backends", "create_backend", "register_backend"]
