"""The research paper's three-path blur-detection network (SEED-ALGORITHM §2), layer for layer.

Module names and layer order equal the authors' ``CNN`` class in ``Model_Test.py``, so the state
dict of their checkpoint (``EResNet_trained_model.pth``: keys ``conv1_1.0.weight`` ...
``ResBlock2_1.shortcut.0.weight``, ``ResBlock2_1.residual.2.weight`` ... ``fc.3.bias``) loads
without any renaming (see :func:`ivif_ros.models.loading.load_model` for wrapped or
``module.``-prefixed files).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .features import normalize_paths, sobel_features
from .registry import register_model

__all__ = ["SeedNet", "seed"]

_SLOPE = 0.1
_DENSE_MODES = ("exact", "shared")


def _check_stride(stride: int) -> int:
    if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    return stride


def _stem() -> nn.Sequential:
    """One input path (``conv1_k``): 3x3 conv 1->64, padding 1, + BatchNorm + LeakyReLU(0.1)."""
    return nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), nn.LeakyReLU(_SLOPE))


class ResBlock(nn.Module):
    """The authors' downsampling residual block (every block in the network is built with ``down=True``).

    ``shortcut`` = Conv1x1 + BN + LeakyReLU(0.1) + MaxPool(2);
    ``residual`` = Conv1x1 + BN + Conv1x1 + BN + LeakyReLU(0.1) + MaxPool(2);
    output = residual + shortcut, no activation after the sum. Initialisation: Xavier-uniform
    weights (gain sqrt(2) in ``residual``, 1 in ``shortcut``), zero biases.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch), nn.LeakyReLU(_SLOPE), nn.MaxPool2d(2),
        )
        self.residual = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1), nn.BatchNorm2d(out_ch),
            nn.Conv2d(out_ch, out_ch, 1), nn.BatchNorm2d(out_ch), nn.LeakyReLU(_SLOPE), nn.MaxPool2d(2),
        )
        for branch, gain in ((self.shortcut, 1.0), (self.residual, math.sqrt(2.0))):
            for layer in branch:
                if isinstance(layer, nn.Conv2d):
                    nn.init.xavier_uniform_(layer.weight, gain=gain)
                    nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class SeedNet(nn.Module):
    """Three-path network: intensity 64->128->128->256; Gx and Gy 64->128->128 each, concatenated
    and merged by one more block to 256; both flattened (256x8x4 each for a 64x32 sample),
    concatenated, Linear(16384->256) + BatchNorm1d + LeakyReLU(0.1) + Linear(2).

    Args:
        stride: dense scoring step in pixels (any positive integer).
        chunk: windows scored per batch by the exact dense pass; bounds memory.
        votes: dense output is the authors' per-window vote instead of a score (see :meth:`forward`).
        dense: ``"exact"`` (every window through the whole network, as the authors did) or
            ``"shared"`` (layers up to the 8x8 cells run once over each image; approximate at
            window borders, needs a stride that is a multiple of 8).
    """

    window = 32

    def __init__(self, stride: int = 8, chunk: int = 128, votes: bool = False, dense: str = "exact") -> None:
        super().__init__()
        self.stride = _check_stride(stride)
        self.chunk = chunk
        self.votes = votes
        self.dense = dense
        self.conv1_1, self.conv1_2, self.conv1_3 = _stem(), _stem(), _stem()
        self.ResBlock2_1, self.ResBlock2_2, self.ResBlock2_3 = ResBlock(64, 128), ResBlock(64, 128), ResBlock(64, 128)
        self.ResBlock3_1, self.ResBlock3_2, self.ResBlock3_3 = (ResBlock(128, 128), ResBlock(128, 128),
                                                                ResBlock(128, 128))
        self.ResBlock4_1 = ResBlock(128, 256)
        self.ResBlock4_23 = ResBlock(256, 256)
        flat = 256 * (2 * self.window // 8) * (self.window // 8)
        self.fc = nn.Sequential(nn.Linear(2 * flat, 256), nn.BatchNorm1d(256), nn.LeakyReLU(_SLOPE), nn.Linear(256, 2))

    @property
    def model_kwargs(self) -> dict[str, int]:
        """Constructor arguments that shape the weights (none: the layout is fixed by the paper)."""
        return {}

    def _cells(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature maps at 1/8 resolution of the intensity branch and of the merged gradient branch."""
        a = self.ResBlock4_1(self.ResBlock3_1(self.ResBlock2_1(self.conv1_1(x[:, 0:1]))))
        gx = self.ResBlock3_2(self.ResBlock2_2(self.conv1_2(x[:, 1:2])))
        gy = self.ResBlock3_3(self.ResBlock2_3(self.conv1_3(x[:, 2:3])))
        return a, self.ResBlock4_23(torch.cat([gx, gy], dim=1))

    def forward_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Classify stacked block pairs.

        Equals the authors' ``CNN.forward((x0-0.45)/0.1, (x1-0.05)/0.09, (x2-0.06)/0.09)``.

        Args:
            x: training samples, channels (intensity, Gx, Gy) in 0..1, block A stacked over block B.

        Returns:
            logits; class 0 = top block sharp, class 1 = bottom block sharp.

        Shape:
            (N, 3, 64, 32) -> (N, 2).
        """
        a, b = self._cells(normalize_paths(x))
        return self.fc(torch.cat([a.flatten(1), b.flatten(1)], dim=1))

    def _combine(self, ab: torch.Tensor, ba: torch.Tensor) -> torch.Tensor:
        """Window result from the logits of (A over B) and (B over A)."""
        d_ab, d_ba = ab[:, 0] - ab[:, 1], ba[:, 0] - ba[:, 1]
        if not self.votes:
            return d_ab - d_ba
        # torch.max picks the first class on a tie, so class 1 means l1 > l0 strictly.
        b_wins = (ab.argmax(1) == 1) & (ba.argmax(1) == 0)
        return torch.where(b_wins, -1.0, 1.0).to(ab.dtype)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """Score every 32x32 window (both stacking orders).

        Args:
            pair: channel 0 = A (visible), channel 1 = B (infrared), in 0..1.

        Returns:
            with ``votes`` False: score = (l0 - l1)(A over B) - (l0 - l1)(B over A), positive
            means A is sharper; with ``votes`` True: the authors' vote, -1 where both orders
            pick B as the sharp block (``score1 > score2``), else +1 (ties go to A).

        Shape:
            (N, 2, H, W) -> (N, 1, (H-32)//stride+1, (W-32)//stride+1).
        """
        n, _, h, w = pair.shape
        k, s = self.window, self.stride
        if h < k or w < k:
            raise ValueError(f"pair must be at least {k}x{k}, got {h}x{w}")
        if self.dense not in _DENSE_MODES:
            raise ValueError(f"dense must be one of {_DENSE_MODES}, got {self.dense!r}")
        nh, nw = (h - k) // s + 1, (w - k) // s + 1
        feats = sobel_features(pair.reshape(n * 2, 1, h, w))
        if self.dense == "shared":
            return self._forward_shared(feats, n, nh, nw)
        cols = F.unfold(feats, kernel_size=k, stride=s)  # (2N, 3*k*k, L)
        wins = cols.transpose(1, 2).reshape(n, 2, nh * nw, 3, k, k)
        wa = wins[:, 0].reshape(-1, 3, k, k)
        wb = wins[:, 1].reshape(-1, 3, k, k)
        results = []
        for start in range(0, wa.shape[0], self.chunk):
            a, b = wa[start:start + self.chunk], wb[start:start + self.chunk]
            logits = self.forward_patches(torch.cat([torch.cat([a, b], 2), torch.cat([b, a], 2)], 0))
            results.append(self._combine(logits[: a.shape[0]], logits[a.shape[0]:]))
        return torch.cat(results).reshape(n, 1, nh, nw)

    def _forward_shared(self, feats: torch.Tensor, n: int, nh: int, nw: int) -> torch.Tensor:
        """Run everything before ``fc`` once per image, then gather each window's 4x4 cells.

        Inside a window this equals the exact pass; the 3x3 stems differ on the window's border
        pixels (the exact pass sees zero padding there, and the other block across the seam).
        """
        s, cells = self.stride, self.window // 8
        if s % 8:
            raise ValueError(f"dense='shared' needs a stride that is a multiple of 8, got {s}")
        a, b = self._cells(normalize_paths(feats))  # (2N, 256, H//8, W//8) each
        step = s // 8

        def windows(m: torch.Tensor) -> torch.Tensor:  # (2N, C, h8, w8) -> (N, 2, L, C, 4, 4)
            m = m.unfold(2, cells, step).unfold(3, cells, step)[:, :, :nh, :nw]
            return m.permute(0, 2, 3, 1, 4, 5).reshape(n, 2, nh * nw, m.shape[1], cells, cells)

        wa_int, wa_grad = windows(a), windows(b)

        def stacked(top: int, sl: slice) -> torch.Tensor:  # fc input of (top over the other image)
            parts = [torch.cat([m[:, top, sl], m[:, 1 - top, sl]], dim=3).flatten(2) for m in (wa_int, wa_grad)]
            return torch.cat(parts, dim=2).flatten(0, 1)

        results = []
        for start in range(0, nh * nw, 4 * self.chunk):
            sl = slice(start, start + 4 * self.chunk)
            ab, ba = self.fc(stacked(0, sl)), self.fc(stacked(1, sl))
            results.append(self._combine(ab, ba).reshape(n, -1))
        return torch.cat(results, dim=1).reshape(n, 1, nh, nw)


@register_model
def seed(**kwargs) -> SeedNet:
    """The paper's three-path network (the authors' layer layout and parameter names)."""
    return SeedNet(**kwargs)
