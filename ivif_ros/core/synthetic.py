"""Synthetic, registered infrared/visible pairs for tests and demos (clearly not real data).

The scene: a textured background and a few objects. The visible image carries fine texture and
colour but is defocused/dark in one region; the thermal image shows warm objects ("people") with
smooth texture and little background detail, plus sensor noise. ``t`` moves the objects, so a
sequence of ``t`` values makes a video-like stream.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SYNTHETIC_LABEL", "synthetic_pair", "synthetic_sequence"]

SYNTHETIC_LABEL = "SYNTHETIC data (generated, not a real camera pair)"


def synthetic_pair(
    height: int = 512,
    width: int = 640,
    seed: int = 0,
    color: bool = True,
    thermal_bits: int = 8,
    t: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One registered pair.

    Args:
        height, width: frame size (>= 16).
        seed: random seed of the scene (texture, object placement).
        color: BGR visible when True, gray otherwise.
        thermal_bits: 8 (uint8) or 16 (uint16 counts around a 16-bit offset, with hot pixels).
        t: time in seconds; objects move with it.

    Returns:
        (infrared H×W uint8/uint16, visible H×W×3 BGR or H×W uint8).
    """
    if height < 16 or width < 16:
        raise ValueError(f"synthetic frames need at least 16x16, got {width}x{height}")
    if thermal_bits not in (8, 16):
        raise ValueError(f"thermal_bits must be 8 or 16, got {thermal_bits}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = rng.standard_normal((height // 4 + 1, width // 4 + 1)).astype(np.float32)
    texture = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.standard_normal((height, width)).astype(np.float32)
    stripes = np.sin(xx * (0.15 + 0.1 * rng.random()) + yy * 0.05)
    visible = 110.0 + 35.0 * texture + 25.0 * stripes + 10.0 * fine
    visible += 50.0 * (xx / width)  # illumination gradient
    thermal = 70.0 + 8.0 * cv2.GaussianBlur(texture, (0, 0), 6)
    for index in range(3):
        cx = (0.2 + 0.3 * index + 0.05 * np.sin(t + index)) * width
        cy = (0.45 + 0.15 * rng.random()) * height
        ry, rx = 0.18 * height, 0.06 * width
        body = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) <= 1.0
        thermal[body] = 190.0 + 20.0 * rng.random()
        visible[body] = 0.6 * visible[body]  # dark clothing in the visible image
    dark = xx > 0.65 * width  # an unlit, out-of-focus region: thermal wins there
    visible[dark] = 0.35 * cv2.GaussianBlur(visible, (0, 0), 4)[dark]
    thermal = cv2.GaussianBlur(thermal, (0, 0), 1.2) + rng.normal(0.0, 2.0, thermal.shape).astype(np.float32)
    visible_u8 = np.clip(visible, 0, 255).astype(np.uint8)
    if color:
        tint = np.stack([visible * 0.9, visible * 1.0, visible * 1.1 + 15.0 * texture], axis=2)
        visible_u8 = np.clip(tint, 0, 255).astype(np.uint8)
    if thermal_bits == 16:
        counts = 21000.0 + 40.0 * thermal
        counts[rng.integers(0, height, 4), rng.integers(0, width, 4)] = 65535.0  # hot pixels
        return np.clip(counts, 0, 65535).astype(np.uint16), visible_u8
    return np.clip(thermal, 0, 255).astype(np.uint8), visible_u8


def synthetic_sequence(
    count: int, height: int = 512, width: int = 640, rate_hz: float = 10.0, seed: int = 0, **kwargs
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` consecutive pairs of one scene, objects moving at ``rate_hz`` frame spacing."""
    return [synthetic_pair(height, width, seed=seed, t=index / rate_hz, **kwargs) for index in range(count)]
