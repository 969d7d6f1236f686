"""Detector input preparation shared by all architectures (SEED-ALGORITHM §1-2).

A training sample stores, per 32x32 block, three uint8 channels: the grayscale intensity and the
Sobel gradients Gx, Gy (MATLAB ``imgradientxy``, replicate border) computed on the 0..255 image and
clipped to 0..255. Networks see them scaled to 0..1 and normalised per path.

The constant tensors (Sobel taps, path mean and std) are built once per (device, dtype) and
reused, so a warmed-up forward creates no tensor from Python data: no blocking host→device copy
per call, and the forward can be captured in a CUDA graph.
"""
from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

__all__ = ["PATH_MEAN", "PATH_STD", "sobel_features", "normalize_paths"]

#: Per-path input normalisation of the research test script (intensity, Gx, Gy; 0..1 scale).
PATH_MEAN = (0.45, 0.05, 0.06)
PATH_STD = (0.1, 0.09, 0.09)

_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


_CONSTANTS: dict[tuple[str, torch.device, torch.dtype], torch.Tensor] = {}
_CONSTANTS_LOCK = threading.Lock()


def _make_constant(name: str) -> torch.Tensor:
    if name == "sobel":
        gx = torch.tensor(_SOBEL_X)
        return torch.stack([gx, gx.t()]).unsqueeze(1)  # (2,1,3,3): Gx (right-left), Gy (bottom-top)
    return torch.tensor(PATH_MEAN if name == "mean" else PATH_STD).view(1, 3, 1, 1)


def _constant(name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The cached constant ``name`` on ``device`` in ``dtype`` (built on first use, then reused).

    Built outside inference mode, so the same tensor also serves training (autograd may save it).
    """
    key = (name, device, dtype)
    tensor = _CONSTANTS.get(key)
    if tensor is None:
        with _CONSTANTS_LOCK, torch.inference_mode(False), torch.no_grad():
            tensor = _CONSTANTS.get(key)
            if tensor is None:
                tensor = _make_constant(name).to(device=device, dtype=dtype)
                _CONSTANTS[key] = tensor
    return tensor


def sobel_features(image: torch.Tensor) -> torch.Tensor:
    """Stack intensity, Gx and Gy exactly as the dataset stores them.

    Args:
        image: float tensor in 0..1.

    Returns:
        float tensor in 0..1: intensity, ``clip(Gx*255, 0, 255)/255``, same for Gy, where the
        gradients are 3x3 Sobel responses (cross-correlation, replicate border) of ``image*255``.

    Shape:
        (N, 1, H, W) -> (N, 3, H, W).
    """
    g = F.conv2d(F.pad(image * 255.0, (1, 1, 1, 1), mode="replicate"), _constant("sobel", image.dtype, image.device))
    return torch.cat([image, g.clamp(0.0, 255.0) / 255.0], dim=1)


def normalize_paths(x: torch.Tensor) -> torch.Tensor:
    """Apply the per-path normalisation of SEED-ALGORITHM §2 to (intensity, Gx, Gy).

    Shape:
        (N, 3, H, W) -> (N, 3, H, W).
    """
    return (x - _constant("mean", x.dtype, x.device)) / _constant("std", x.dtype, x.device)
