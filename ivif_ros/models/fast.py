"""The product's default detector: a tiny siamese, fully-convolutional sharpness comparator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import normalize_paths, sobel_features
from .registry import register_model

__all__ = ["FastNet", "fast"]

_CELL = 4  # encoder output step (px); cells never overlap, so a window sees only its own pixels


class FastNet(nn.Module):
    """Siamese sharpness encoder + antisymmetric comparison head.

    The encoder maps (intensity, Gx, Gy) to features on non-overlapping 4x4 cells (a 4x4/4 conv,
    then 1x1 convs), so a window's descriptor -- the mean over its 8x8 cells, log-compressed --
    depends only on that window's pixels: dense scoring equals per-window scoring exactly.
    The head compares two descriptors as ``h(fA, fB) - h(fB, fA)``, so swapping the two blocks
    flips the sign of the score by construction. Ops: conv, relu, avg-pool, log (export-friendly).

    Args:
        stride: dense scoring step in pixels, a positive multiple of 4.
        width: encoder channels.
        hidden: comparison-head channels.
    """

    window = 32

    def __init__(self, stride: int = 8, width: int = 24, hidden: int = 32) -> None:
        super().__init__()
        self.stride = stride
        self.width, self.hidden = width, hidden
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, _CELL, stride=_CELL), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1), nn.ReLU(inplace=True),
        )
        self.compare = nn.Sequential(nn.Conv2d(2 * width, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))

    @property
    def model_kwargs(self) -> dict[str, int]:
        """Constructor arguments that shape the weights (stored in saved files)."""
        return {"width": self.width, "hidden": self.hidden}

    @property
    def stride(self) -> int:
        """Dense output step in pixels (a multiple of 4)."""
        return self._stride

    @stride.setter
    def stride(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < _CELL or value % _CELL:
            raise ValueError(f"stride must be a positive multiple of {_CELL}, got {value!r}")
        self._stride = value

    def _describe(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """(N,3,H,W) raw features -> log window descriptors (N, width, nh, nw) at ``step`` px."""
        f = self.encoder(normalize_paths(x))
        return torch.log(F.avg_pool2d(f, self.window // _CELL, stride=step // _CELL) + 1e-2)

    def _score(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        return self.compare(torch.cat([fa, fb], 1)) - self.compare(torch.cat([fb, fa], 1))

    def forward_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Classify stacked block pairs.

        Args:
            x: training samples, channels (intensity, Gx, Gy) in 0..1, block A stacked over block B.

        Returns:
            logits ``(s/2, -s/2)`` with s the A-vs-B score; class 0 = top block sharp.

        Shape:
            (N, 3, 64, 32) -> (N, 2).
        """
        k = self.window
        s = self._score(self._describe(x[:, :, :k], k), self._describe(x[:, :, k:], k)).flatten(1)
        return torch.cat([s, -s], 1) * 0.5

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """Score every 32x32 window (top-left corners on a ``stride`` grid).

        Args:
            pair: channel 0 = A (visible), channel 1 = B (infrared), in 0..1.

        Returns:
            log-odds that A is the sharper one.

        Shape:
            (N, 2, H, W) -> (N, 1, (H-32)//stride+1, (W-32)//stride+1).
        """
        fa = self._describe(sobel_features(pair[:, 0:1]), self.stride)
        fb = self._describe(sobel_features(pair[:, 1:2]), self.stride)
        return self._score(fa, fb)


@register_model
def fast(**kwargs) -> FastNet:
    """The product default: siamese sharpness comparator, about 4k parameters, CPU real time."""
    return FastNet(**kwargs)
