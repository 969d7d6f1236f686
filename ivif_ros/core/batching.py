"""Offline batching: consecutive pairs of equal size fused B at a time, errors kept per pair.

``fuse_in_batches`` is what ``ivif-fuse`` and ``ivif-bag fuse`` use over many pairs: it loads
items lazily, groups consecutive pairs whose arrays share shape and dtype (at most ``batch``),
fuses each group with ``FusionPipeline.fuse_batch`` (one detector call, per-sample reductions,
results identical to single calls), and yields ``(item, result or exception)`` in input order.
A group that fails is retried pair by pair, so one bad pair costs only itself.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

__all__ = ["fuse_in_batches", "pair_signature"]

Item = TypeVar("Item")
Pair = tuple[np.ndarray, np.ndarray]


def pair_signature(ir: np.ndarray, vis: np.ndarray) -> tuple:
    """Pairs with equal signatures can share one batch (same shapes and dtypes)."""
    return ir.shape, ir.dtype.str, vis.shape, vis.dtype.str


def fuse_in_batches(
    pipeline: Any,
    items: Iterable[Item],
    load: Callable[[Item], Pair],
    batch: int,
) -> Iterator[tuple[Item, Any]]:
    """Fuse ``items`` in batches of up to ``batch`` consecutive equal-size pairs.

    Args:
        pipeline: a ``FusionPipeline`` (``fuse_batch`` and ``__call__``).
        items: anything ``load`` turns into an ``(ir, vis)`` pair (paths, bag indices...).
        load: item → (ir, vis) arrays; an exception it raises is that item's result.
        batch: pairs per call (1 = single calls).

    Yields:
        ``(item, FusionResult)`` or ``(item, exception)``, in the order of ``items``.
    """
    group: list[tuple[Item, Pair]] = []

    def flush() -> Iterator[tuple[Item, Any]]:
        if len(group) > 1:
            try:
                results = pipeline.fuse_batch([pair for _, pair in group])
            except Exception:  # a bad pair in the group: fall back to single calls, each with its own outcome
                results = None
            if results is not None:
                yield from zip((item for item, _ in group), results, strict=True)
                group.clear()
                return
        for item, (ir, vis) in group:
            try:
                yield item, pipeline(ir, vis)
            except Exception as error:
                yield item, error
        group.clear()

    for item in items:
        try:
            pair = load(item)
        except Exception as error:
            yield from flush()
            yield item, error
            continue
        if group and (len(group) >= batch or pair_signature(*group[0][1]) != pair_signature(*pair)):
            yield from flush()
        group.append((item, pair))
    yield from flush()
