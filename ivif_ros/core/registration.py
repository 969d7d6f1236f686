"""Bringing the thermal image into the visible camera's frame.

Two steps: an optional 3×3 homography (thermal pixel → visible pixel, from calibration), then the
size policy of the core: when the two frames still differ in size, the thermal image is resized
to the visible frame if their aspect ratios agree within ``tolerance`` (relative), otherwise the
pair is refused.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import FusionInputError, SizeMismatchError

__all__ = ["warp_thermal", "match_thermal_size", "parse_homography"]


def parse_homography(values: list[float] | np.ndarray) -> np.ndarray:
    """A row-major list of 9 numbers → a normalised 3×3 float64 homography.

    Raises:
        FusionInputError: not 9 finite numbers, or singular.
    """
    matrix = np.asarray(values, dtype=np.float64).reshape(-1)
    if matrix.size != 9 or not np.all(np.isfinite(matrix)):
        raise FusionInputError(f"homography must be 9 finite numbers (row-major 3x3), got {list(matrix)}")
    matrix = matrix.reshape(3, 3)
    if abs(np.linalg.det(matrix)) < 1e-12:
        raise FusionInputError("homography is singular")
    return matrix / matrix[2, 2] if abs(matrix[2, 2]) > 1e-12 else matrix


def warp_thermal(thermal: np.ndarray, homography: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warp a thermal image by ``homography`` into a frame of ``size`` = (height, width).

    The identity homography with an equal size returns the input unchanged (no copy).
    """
    height, width = size
    if np.allclose(homography, np.eye(3)) and thermal.shape[:2] == (height, width):
        return thermal
    return cv2.warpPerspective(
        thermal, homography, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def match_thermal_size(
    thermal: np.ndarray, visible_shape: tuple[int, int], tolerance: float = 0.02
) -> tuple[np.ndarray, str | None]:
    """Apply the size policy.

    Returns:
        (thermal in the visible frame size, warning text or None).

    Raises:
        SizeMismatchError: aspect ratios differ by more than ``tolerance``.
    """
    height, width = visible_shape
    t_height, t_width = thermal.shape[:2]
    if (t_height, t_width) == (height, width):
        return thermal, None
    aspect_thermal, aspect_visible = t_width / t_height, width / height
    if abs(aspect_thermal / aspect_visible - 1.0) > tolerance:
        raise SizeMismatchError(
            f"infrared {t_width}x{t_height} and visible {width}x{height} differ in aspect ratio "
            f"({aspect_thermal:.3f} vs {aspect_visible:.3f}, tolerance {tolerance:.0%}); register them first"
        )
    interpolation = cv2.INTER_AREA if t_width > width else cv2.INTER_LINEAR
    resized = cv2.resize(thermal, (width, height), interpolation=interpolation)
    return resized, f"infrared {t_width}x{t_height} resized to the visible frame {width}x{height}"
