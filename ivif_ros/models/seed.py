"""The research paper's three-path blur-detection network (SEED-ALGORITHM §2), reproduced exactly."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import normalize_paths, sobel_features
from .registry import register_model

__all__ = ["SeedNet", "seed"]


def _check_stride(stride: int) -> int:
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    return stride


class _Stem(nn.Sequential):
    """One input path: 3x3 conv to 64 channels + BatchNorm + LeakyReLU(0.1)."""

    def __init__(self) -> None:
        super().__init__(nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), nn.LeakyReLU(0.1))


class _ResBlock(nn.Module):
    """Residual block: 1x1 conv branch with BatchNorm, 1x1 conv shortcut when channels change, 2x max-pool."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch), nn.LeakyReLU(0.1),
            nn.Conv2d(out_ch, out_ch, 1), nn.BatchNorm2d(out_ch),
        )
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.act = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.branch(x) + self.shortcut(x)))


class SeedNet(nn.Module):
    """Three-path network: path 1 (intensity) 64->128->128->256; paths 2, 3 (Gx, Gy) 64->128->128,
    concatenated and merged by one more residual block to 256; both flattened, concatenated,
    Linear(256) + BatchNorm1d + LeakyReLU + Linear(2).

    Args:
        stride: dense scoring step in pixels (any positive integer).
        chunk: windows scored per batch by the dense :meth:`forward`; bounds memory (128 windows =
            256 stacked samples ≈ 1 GB of activations; 2048 needed ≈ 16 GB, enough to OOM a 24 GB robot).
    """

    window = 32

    def __init__(self, stride: int = 8, chunk: int = 128) -> None:
        super().__init__()
        self.stride = _check_stride(stride)
        self.chunk = chunk
        self.path1 = nn.Sequential(_Stem(), _ResBlock(64, 128), _ResBlock(128, 128), _ResBlock(128, 256))
        self.path2 = nn.Sequential(_Stem(), _ResBlock(64, 128), _ResBlock(128, 128))
        self.path3 = nn.Sequential(_Stem(), _ResBlock(64, 128), _ResBlock(128, 128))
        self.merge = _ResBlock(256, 256)
        flat = 256 * (2 * self.window // 8) * (self.window // 8)
        self.head = nn.Sequential(nn.Linear(2 * flat, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.1), nn.Linear(256, 2))

    @property
    def model_kwargs(self) -> dict[str, int]:
        """Constructor arguments that shape the weights (none: the layout is fixed by the paper)."""
        return {}

    def forward_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Classify stacked block pairs.

        Args:
            x: training samples, channels (intensity, Gx, Gy) in 0..1, block A stacked over block B.

        Returns:
            logits; class 0 = top block sharp, class 1 = bottom block sharp.

        Shape:
            (N, 3, 64, 32) -> (N, 2).
        """
        x = normalize_paths(x)
        a = self.path1(x[:, 0:1])
        b = self.merge(torch.cat([self.path2(x[:, 1:2]), self.path3(x[:, 2:3])], dim=1))
        return self.head(torch.cat([a.flatten(1), b.flatten(1)], dim=1))

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """Score every 32x32 window in one batched pass (unfold; both stacking orders).

        Args:
            pair: channel 0 = A (visible), channel 1 = B (infrared), in 0..1.

        Returns:
            score = (l0 - l1)(A over B) - (l0 - l1)(B over A); positive means A is sharper.

        Shape:
            (N, 2, H, W) -> (N, 1, (H-32)//stride+1, (W-32)//stride+1).
        """
        n, _, h, w = pair.shape
        k, s = self.window, self.stride
        if h < k or w < k:
            raise ValueError(f"pair must be at least {k}x{k}, got {h}x{w}")
        nh, nw = (h - k) // s + 1, (w - k) // s + 1
        feats = sobel_features(pair.reshape(n * 2, 1, h, w))
        cols = F.unfold(feats, kernel_size=k, stride=s)  # (2N, 3*k*k, L)
        wins = cols.transpose(1, 2).reshape(n, 2, nh * nw, 3, k, k)
        wa = wins[:, 0].reshape(-1, 3, k, k)
        wb = wins[:, 1].reshape(-1, 3, k, k)
        scores = []
        for start in range(0, wa.shape[0], self.chunk):
            a, b = wa[start:start + self.chunk], wb[start:start + self.chunk]
            logits = self.forward_patches(torch.cat([torch.cat([a, b], 2), torch.cat([b, a], 2)], 0))
            d = logits[:, 0] - logits[:, 1]
            scores.append(d[: a.shape[0]] - d[a.shape[0]:])
        return torch.cat(scores).reshape(n, 1, nh, nw)


@register_model
def seed(**kwargs) -> SeedNet:
    """The paper's three-path network (slow; faithful research reproduction)."""
    return SeedNet(**kwargs)
