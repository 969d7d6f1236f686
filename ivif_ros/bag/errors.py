"""Error class of the bag tools."""

from __future__ import annotations

__all__ = ["BagError"]


class BagError(Exception):
    """A bag cannot be written, read, played or fused; the message says why in one line."""
