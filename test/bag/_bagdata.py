"""Synthetic paired image folders for the bag tests (imported by conftest and the tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ivif_ros.core.synthetic import synthetic_pair

START_NS = 1_700_000_000_123_456_789
SIZE = (48, 64)  # height, width


def write_pairs(
    root: Path,
    count: int,
    *,
    ir_name: str = "ir",
    vis_name: str = "vis",
    thermal_bits: int = 8,
    size: tuple[int, int] = SIZE,
    ir_suffix: str = "",
    vis_suffix: str = "",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Write ``count`` synthetic pairs as lossless PNGs; returns the (ir, vis) arrays written.

    8-bit thermal frames are stored as 3-channel gray, as LLVIP does.
    """
    (root / ir_name).mkdir(parents=True, exist_ok=True)
    (root / vis_name).mkdir(parents=True, exist_ok=True)
    frames = []
    for k in range(count):
        ir, vis = synthetic_pair(*size, seed=7, thermal_bits=thermal_bits, t=0.1 * k)
        stored_ir = cv2.merge([ir, ir, ir]) if thermal_bits == 8 else ir
        assert cv2.imwrite(str(root / ir_name / f"{k + 1:08d}{ir_suffix}.png"), stored_ir)
        assert cv2.imwrite(str(root / vis_name / f"{k + 1:08d}{vis_suffix}.png"), vis)
        frames.append((ir, vis))
    return frames
