"""Bringing the thermal image into the visible camera's frame.

Two steps: an optional 3×3 homography (thermal pixel → visible pixel, from calibration), or
per-pixel maps from a stereo calibration (intrinsics, distortion and extrinsics of both cameras
and an assumed scene depth), then the size policy of the core: when the two frames still differ
in size, the thermal image is resized to the visible frame if their aspect ratios agree within
``tolerance`` (relative), otherwise the pair is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from .errors import FusionInputError, SizeMismatchError

__all__ = [
    "warp_thermal",
    "match_thermal_size",
    "parse_homography",
    "CameraModel",
    "StereoCalibration",
    "parse_extrinsics",
    "plane_homography",
    "registration_maps",
    "remap_thermal",
    "load_stereo_calibration",
]


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


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of one camera, optionally with OpenCV distortion coefficients.

    Attributes:
        matrix: 3×3 camera matrix K (fx, fy, cx, cy in pixels).
        size: (width, height) of the image the matrix refers to.
        distortion: OpenCV coefficients (k1, k2, p1, p2[, k3[, k4, k5, k6]]); empty or all zero = none.
    """

    matrix: np.ndarray
    size: tuple[int, int]
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        if not np.all(np.isfinite(matrix)) or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
            raise FusionInputError(f"camera matrix needs finite fx, fy > 0, got {matrix.tolist()}")
        width, height = (int(v) for v in self.size)
        if width <= 0 or height <= 0:
            raise FusionInputError(f"camera image size must be positive, got {self.size}")
        distortion = np.asarray(self.distortion, dtype=np.float64).reshape(-1)
        if distortion.size not in (0, 4, 5, 8, 12, 14) or not np.all(np.isfinite(distortion)):
            raise FusionInputError(f"distortion needs 4, 5, 8, 12 or 14 finite coefficients, got {distortion.tolist()}")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "size", (width, height))
        object.__setattr__(self, "distortion", distortion)

    @property
    def distorted(self) -> bool:
        return bool(np.any(self.distortion != 0.0))

    def scaled_to(self, size: tuple[int, int]) -> CameraModel:
        """The same camera for an image of ``size`` = (width, height) (binning, resized stream)."""
        if tuple(size) == self.size:
            return self
        scale_x, scale_y = size[0] / self.size[0], size[1] / self.size[1]
        matrix = self.matrix.copy()
        matrix[0, :] *= scale_x
        matrix[1, :] *= scale_y
        # Pixel centres: x' + 0.5 = s (x + 0.5).
        matrix[0, 2] += 0.5 * (scale_x - 1.0)
        matrix[1, 2] += 0.5 * (scale_y - 1.0)
        return CameraModel(matrix, tuple(size), self.distortion)


@dataclass(frozen=True)
class StereoCalibration:
    """Thermal and RGB cameras plus the thermal→RGB extrinsics: X_rgb = R · X_thermal + t."""

    thermal: CameraModel
    rgb: CameraModel
    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        rotation, translation = parse_extrinsics(self.rotation, self.translation)
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)


def parse_extrinsics(
    rotation: np.ndarray | list[float], translation: np.ndarray | list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """A row-major 3×3 rotation and a 3-vector translation as float64 arrays.

    Raises:
        FusionInputError: wrong sizes, non-finite values, or a matrix that is not a rotation.
    """
    rotation = np.asarray(rotation, dtype=np.float64).reshape(-1)
    translation = np.asarray(translation, dtype=np.float64).reshape(-1)
    if rotation.size != 9 or translation.size != 3:
        raise FusionInputError(f"extrinsics need 9 rotation and 3 translation values, got {rotation.size} and "
                               f"{translation.size}")
    if not (np.all(np.isfinite(rotation)) and np.all(np.isfinite(translation))):
        raise FusionInputError("extrinsic rotation and translation must be finite")
    rotation = rotation.reshape(3, 3)
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or np.linalg.det(rotation) < 0:
        raise FusionInputError(f"extrinsic rotation is not a rotation matrix: {rotation.tolist()}")
    return rotation, translation


def plane_homography(calibration: StereoCalibration, depth: float) -> np.ndarray:
    """Homography of undistorted thermal pixels → undistorted RGB pixels for a fronto-parallel
    scene plane at ``depth`` (along the thermal optical axis, in the translation's unit).

    H = K_rgb (R + t nᵀ / d) K_thermal⁻¹ with n = (0, 0, 1): exact for points on that plane,
    a parallax error of about f·|t|·|1/d − 1/Z| pixels for a point at depth Z.

    Raises:
        FusionInputError: depth not finite and > 0.
    """
    if not np.isfinite(depth) or depth <= 0:
        raise FusionInputError(f"scene depth must be a finite distance > 0, got {depth}")
    normal = np.array([0.0, 0.0, 1.0])
    euclidean = calibration.rotation + np.outer(calibration.translation, normal) / depth
    matrix = calibration.rgb.matrix @ euclidean @ np.linalg.inv(calibration.thermal.matrix)
    return parse_homography(matrix)


# Distorted calibrations are mapped exactly every MAP_GRID_STEP RGB pixels and bilinearly in
# between: lens models are smooth, so this stays within a few hundredths of a pixel and is far cheaper.
MAP_GRID_STEP = 8


def _thermal_pixels(rgb_pixels: np.ndarray, rgb: CameraModel, thermal: CameraModel,
                    homography: np.ndarray) -> np.ndarray:
    """Raw RGB pixels (N, 2) -> raw thermal pixels (N, 2) through the plane homography and both lenses."""
    points = rgb_pixels.reshape(-1, 1, 2).astype(np.float64)
    if rgb.distorted:
        points = cv2.undistortPoints(points, rgb.matrix, rgb.distortion, P=rgb.matrix)
    thermal_points = cv2.perspectiveTransform(points, np.linalg.inv(homography))
    if thermal.distorted:
        rays = cv2.undistortPoints(thermal_points, thermal.matrix, None)  # pixel -> normalised (no lens)
        rays3 = np.concatenate([rays.reshape(-1, 2), np.ones((rays.shape[0], 1))], axis=1)
        thermal_points, _ = cv2.projectPoints(rays3, np.zeros(3), np.zeros(3), thermal.matrix, thermal.distortion)
    return thermal_points.reshape(-1, 2)


def registration_maps(
    calibration: StereoCalibration, depth: float, rgb_size: tuple[int, int], thermal_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per RGB pixel, the thermal pixel it sees (``cv2.remap`` maps), distortion of both cameras included.

    Each raw RGB pixel is undistorted to a ray, met with the scene plane at ``depth``, moved into
    the thermal camera and projected through the thermal lens model. The intrinsics are rescaled
    to the actual frame sizes first. Without distortion every pixel is mapped exactly; with it,
    every ``MAP_GRID_STEP`` pixels, bilinear in between.

    Args:
        calibration: both cameras and the extrinsics.
        depth: assumed scene depth (translation units).
        rgb_size, thermal_size: (width, height) of the frames being fused.

    Returns:
        (map_x, map_y), float32 arrays of the RGB frame's shape.
    """
    rgb = calibration.rgb.scaled_to(rgb_size)
    thermal = calibration.thermal.scaled_to(thermal_size)
    homography = plane_homography(StereoCalibration(thermal, rgb, calibration.rotation, calibration.translation), depth)
    width, height = rgb_size
    if not (rgb.distorted or thermal.distorted):
        grid = np.stack(np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)), axis=-1)
        maps = _thermal_pixels(grid, rgb, thermal, homography).reshape(height, width, 2).astype(np.float32)
        return maps[..., 0], maps[..., 1]
    columns = int(np.ceil((width - 1) / MAP_GRID_STEP)) + 1
    rows = int(np.ceil((height - 1) / MAP_GRID_STEP)) + 1
    xs, ys = np.linspace(0.0, width - 1, columns), np.linspace(0.0, height - 1, rows)
    coarse = _thermal_pixels(np.stack(np.meshgrid(xs, ys), axis=-1), rgb, thermal, homography)
    coarse = coarse.reshape(rows, columns, 2)
    # Position of every RGB pixel on the coarse grid, then bilinear interpolation in float64
    # (cv2.remap/resize would quantise the sub-pixel position to 1/32 of a grid cell).
    maps = _bilinear(coarse, np.arange(width) * ((columns - 1) / max(width - 1, 1)),
                     np.arange(height) * ((rows - 1) / max(height - 1, 1)))
    return maps[..., 0], maps[..., 1]


def _bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``grid`` (rows, columns, C) sampled at every (y[j], x[i]) in grid units → float32 (len(y), len(x), C)."""
    i0 = np.clip(np.floor(x).astype(int), 0, max(grid.shape[1] - 2, 0))
    j0 = np.clip(np.floor(y).astype(int), 0, max(grid.shape[0] - 2, 0))
    i1, j1 = np.minimum(i0 + 1, grid.shape[1] - 1), np.minimum(j0 + 1, grid.shape[0] - 1)
    fx, fy = (x - i0)[None, :, None], (y - j0)[:, None, None]
    top = grid[j0][:, i0] * (1 - fx) + grid[j0][:, i1] * fx
    bottom = grid[j1][:, i0] * (1 - fx) + grid[j1][:, i1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def remap_thermal(thermal: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Resample a thermal frame with :func:`registration_maps` output (edge pixels replicated)."""
    return cv2.remap(thermal, maps[0], maps[1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def load_stereo_calibration(path: str | Path) -> StereoCalibration:
    """Read a thermal+RGB stereo calibration; the thermal camera is the first one.

    Formats:
      * OpenCV ``FileStorage`` YAML/XML as written after ``cv2.stereoCalibrate`` (thermal points
        first): ``K1``/``D1``, ``K2``/``D2`` (or ``M1``/``M2``, ``cameraMatrix1``/...),
        ``R``, ``T``, and the sizes ``image_width``/``image_height`` or ``size1``/``size2``.
      * Kalibr camchain YAML: ``cam0`` (thermal) and ``cam1`` (RGB) with ``intrinsics``
        [fu, fv, pu, pv], ``distortion_coeffs`` (radtan), ``resolution`` and
        ``cam1.T_cn_cnm1`` (4×4, thermal → RGB).

    Raises:
        FusionInputError: unreadable file, missing key, or values that are not a calibration.
    """
    path = Path(path)
    if not path.is_file():
        raise FusionInputError(f"calibration file {path} does not exist")
    text = path.read_text(errors="replace")
    try:
        if "cam0" in text and "T_cn_cnm1" in text:
            return _load_kalibr(path)
        return _load_opencv(path)
    except FusionInputError:
        raise
    except (KeyError, ValueError, TypeError, cv2.error, yaml.YAMLError) as exc:
        raise FusionInputError(f"calibration file {path}: {type(exc).__name__}: {exc}") from exc


def _load_kalibr(path: Path) -> StereoCalibration:
    chain = yaml.safe_load(path.read_text())
    cameras = []
    for key in ("cam0", "cam1"):
        camera = chain[key]
        if camera.get("camera_model", "pinhole") != "pinhole" or camera.get("distortion_model", "radtan") != "radtan":
            raise FusionInputError(f"{path}: {key} must be pinhole-radtan, got "
                                   f"{camera.get('camera_model')}-{camera.get('distortion_model')}")
        fu, fv, pu, pv = (float(v) for v in camera["intrinsics"])
        matrix = np.array([[fu, 0.0, pu], [0.0, fv, pv], [0.0, 0.0, 1.0]])
        cameras.append(CameraModel(matrix, tuple(camera["resolution"]), camera.get("distortion_coeffs", [])))
    transform = np.asarray(chain["cam1"]["T_cn_cnm1"], dtype=np.float64).reshape(4, 4)
    return StereoCalibration(cameras[0], cameras[1], transform[:3, :3], transform[:3, 3])


def _opencv_value(storage: cv2.FileStorage, *names: str) -> np.ndarray | None:
    """The first of ``names`` present in a FileStorage: a matrix, a sequence or a scalar, as an array."""
    for name in names:
        node = storage.getNode(name)
        if node.empty():
            continue
        if node.isSeq():
            return np.array([node.at(i).real() for i in range(node.size())])
        if node.isReal() or node.isInt():
            return np.array([node.real()])
        return np.asarray(node.mat(), dtype=np.float64)
    return None


def _load_opencv(path: Path) -> StereoCalibration:
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    if not storage.isOpened():
        raise FusionInputError(f"calibration file {path} is neither OpenCV FileStorage nor Kalibr YAML")
    try:
        values = {
            key: _opencv_value(storage, *names)
            for key, names in {
                "K1": ("K1", "M1", "cameraMatrix1"), "D1": ("D1", "distCoeffs1"),
                "K2": ("K2", "M2", "cameraMatrix2"), "D2": ("D2", "distCoeffs2"),
                "R": ("R",), "T": ("T",), "size1": ("size1", "image_size"), "size2": ("size2", "image_size"),
                "width": ("image_width",), "height": ("image_height",),
            }.items()
        }
    finally:
        storage.release()
    missing = [key for key in ("K1", "K2", "R", "T") if values[key] is None]
    if missing:
        raise FusionInputError(f"calibration file {path} lacks {', '.join(missing)}")
    sizes = []
    for key in ("size1", "size2"):
        if values[key] is not None and values[key].size >= 2:
            sizes.append((int(values[key].reshape(-1)[0]), int(values[key].reshape(-1)[1])))
        elif values["width"] is not None and values["height"] is not None:
            sizes.append((int(values["width"].reshape(-1)[0]), int(values["height"].reshape(-1)[0])))
        else:
            raise FusionInputError(f"calibration file {path} lacks the image size ({key} or image_width/image_height)")
    thermal = CameraModel(values["K1"], sizes[0], values["D1"] if values["D1"] is not None else np.zeros(0))
    rgb = CameraModel(values["K2"], sizes[1], values["D2"] if values["D2"] is not None else np.zeros(0))
    return StereoCalibration(thermal, rgb, values["R"], values["T"])
