"""Counts tensors built from Python data (a host→device copy each when the target is a GPU)."""
from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

#: Factories that copy host data (or fill from a Python scalar) into a new tensor.
CONSTRUCTORS = {torch.tensor, torch.as_tensor, torch.asarray, torch.full, torch.scalar_tensor, torch.from_numpy}


class CountConstructions(TorchFunctionMode):
    """``with CountConstructions() as counter: ...``; ``counter.calls`` names every construction."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in CONSTRUCTORS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))
