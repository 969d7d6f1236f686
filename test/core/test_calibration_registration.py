"""Registration from a stereo calibration: plane homography, distortion-aware maps, calibration files.

Every expectation comes from forward projection of 3-D points (cv2.projectPoints), independent of
the inverse mapping under test.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ivif_ros.core.errors import FusionInputError
from ivif_ros.core.registration import (
    CameraModel,
    StereoCalibration,
    load_stereo_calibration,
    parse_extrinsics,
    plane_homography,
    registration_maps,
    remap_thermal,
)

THERMAL_SIZE, RGB_SIZE = (320, 256), (640, 480)
K_THERMAL = np.array([[400.0, 0.0, 161.3], [0.0, 402.0, 126.8], [0.0, 0.0, 1.0]])
K_RGB = np.array([[610.0, 0.0, 322.5], [0.0, 608.0, 238.1], [0.0, 0.0, 1.0]])
ROTATION = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]
TRANSLATION = np.array([0.06, -0.01, 0.002])  # metres, thermal -> RGB
DEPTH = 5.0


def calibration(d_thermal=(), d_rgb=()) -> StereoCalibration:
    return StereoCalibration(
        CameraModel(K_THERMAL, THERMAL_SIZE, np.array(d_thermal)), CameraModel(K_RGB, RGB_SIZE, np.array(d_rgb)),
        ROTATION, TRANSLATION,
    )


def plane_points(depth: float, count: int = 200, seed: int = 0) -> np.ndarray:
    """3-D points (thermal frame) on the plane Z = depth inside the thermal field of view."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform([10, 10], [THERMAL_SIZE[0] - 10, THERMAL_SIZE[1] - 10], (count, 2))
    rays = np.linalg.solve(K_THERMAL, np.concatenate([pixels, np.ones((count, 1))], axis=1).T).T
    return rays * depth


def project(points: np.ndarray, camera: CameraModel, rotation: np.ndarray | None = None,
            translation: np.ndarray | None = None) -> np.ndarray:
    """Forward projection (cv2.projectPoints); default pose = the thermal camera's own frame."""
    rvec = cv2.Rodrigues(np.eye(3) if rotation is None else rotation)[0]
    tvec = np.zeros(3) if translation is None else translation.astype(np.float64)
    distortion = camera.distortion if camera.distortion.size else None
    pixels, _ = cv2.projectPoints(points.reshape(-1, 1, 3), rvec, tvec, camera.matrix, distortion)
    return pixels.reshape(-1, 2)


def sample(maps: tuple[np.ndarray, np.ndarray], pixels: np.ndarray) -> np.ndarray:
    """Bilinear lookup of the two maps at float pixel positions."""
    x, y = pixels[:, 0], pixels[:, 1]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    result = []
    for grid in maps:
        top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
        bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
        result.append(top * (1 - fy) + bottom * fy)
    return np.stack(result, axis=1)


def test_plane_homography_maps_thermal_to_rgb_pixels_of_plane_points() -> None:
    calib = calibration()
    points = plane_points(DEPTH)
    thermal_px = project(points, calib.thermal)
    rgb_px = project(points, calib.rgb, ROTATION, TRANSLATION)
    mapped = cv2.perspectiveTransform(thermal_px.reshape(-1, 1, 2), plane_homography(calib, DEPTH)).reshape(-1, 2)
    assert np.abs(mapped - rgb_px).max() < 1e-6


def test_off_plane_points_show_the_expected_parallax() -> None:
    calib = calibration()
    homography = plane_homography(calib, DEPTH)
    far = plane_points(50.0)
    error = np.linalg.norm(
        cv2.perspectiveTransform(project(far, calib.thermal).reshape(-1, 1, 2), homography).reshape(-1, 2)
        - project(far, calib.rgb, ROTATION, TRANSLATION), axis=1)
    expected = K_RGB[0, 0] * np.linalg.norm(TRANSLATION[:2]) * abs(1 / DEPTH - 1 / 50.0)
    assert expected * 0.8 < np.median(error) < expected * 1.2, (np.median(error), expected)
    with pytest.raises(FusionInputError):
        plane_homography(calib, 0.0)


@pytest.mark.parametrize("distorted", [False, True])
def test_registration_maps_send_rgb_pixels_to_the_thermal_pixels_of_the_same_scene_point(distorted: bool) -> None:
    d_thermal = (-0.25, 0.08, 0.001, -0.0005, 0.0) if distorted else ()
    d_rgb = (0.12, -0.2, -0.0008, 0.0006, 0.05) if distorted else ()
    calib = calibration(d_thermal, d_rgb)
    maps = registration_maps(calib, DEPTH, RGB_SIZE, THERMAL_SIZE)
    assert maps[0].shape == (RGB_SIZE[1], RGB_SIZE[0]) and maps[0].dtype == np.float32
    points = plane_points(DEPTH, seed=1)
    rgb_px = project(points, calib.rgb, ROTATION, TRANSLATION)
    thermal_px = project(points, calib.thermal)
    inside = np.all((rgb_px > 1) & (rgb_px < np.array(RGB_SIZE) - 2), axis=1)
    assert inside.sum() > 100
    error = np.linalg.norm(sample(maps, rgb_px[inside]) - thermal_px[inside], axis=1)
    assert error.max() < 0.05, error.max()
    if distorted:  # ignoring the lenses would be off by pixels
        plain = registration_maps(calibration(), DEPTH, RGB_SIZE, THERMAL_SIZE)
        assert np.linalg.norm(sample(plain, rgb_px[inside]) - thermal_px[inside], axis=1).max() > 2.0


def test_maps_follow_a_downscaled_thermal_stream_and_remap_a_frame() -> None:
    calib = calibration()
    half = (THERMAL_SIZE[0] // 2, THERMAL_SIZE[1] // 2)
    full = registration_maps(calib, DEPTH, RGB_SIZE, THERMAL_SIZE)
    halved = registration_maps(calib, DEPTH, RGB_SIZE, half)
    np.testing.assert_allclose(halved[0], (full[0] + 0.5) / 2 - 0.5, atol=1e-3)
    np.testing.assert_allclose(halved[1], (full[1] + 0.5) / 2 - 0.5, atol=1e-3)
    # A thermal frame whose value encodes its own column lands where the maps say.
    thermal = np.tile(np.arange(THERMAL_SIZE[0], dtype=np.float32), (THERMAL_SIZE[1], 1))
    registered = remap_thermal(thermal, full)
    assert registered.shape == (RGB_SIZE[1], RGB_SIZE[0])
    centre = (RGB_SIZE[1] // 2, RGB_SIZE[0] // 2)
    assert abs(registered[centre] - full[0][centre]) < 1e-3


def test_opencv_and_kalibr_calibration_files(tmp_path: Path) -> None:
    d_thermal, d_rgb = np.array([-0.2, 0.05, 0.0, 0.001, 0.0]), np.array([0.1, -0.1, 0.0, 0.0, 0.0])
    opencv_file = tmp_path / "stereo.yaml"
    storage = cv2.FileStorage(str(opencv_file), cv2.FILE_STORAGE_WRITE)
    for key, value in {"K1": K_THERMAL, "D1": d_thermal.reshape(1, 5), "K2": K_RGB, "D2": d_rgb.reshape(1, 5),
                       "R": ROTATION, "T": TRANSLATION.reshape(3, 1)}.items():
        storage.write(key, value)
    storage.write("size1", np.array(THERMAL_SIZE, dtype=np.float64).reshape(1, 2))
    storage.write("size2", np.array(RGB_SIZE, dtype=np.float64).reshape(1, 2))
    storage.release()
    loaded = load_stereo_calibration(opencv_file)
    np.testing.assert_allclose(loaded.thermal.matrix, K_THERMAL)
    np.testing.assert_allclose(loaded.rgb.distortion, d_rgb)
    np.testing.assert_allclose(loaded.rotation, ROTATION)
    np.testing.assert_allclose(loaded.translation, TRANSLATION)
    assert (loaded.thermal.size, loaded.rgb.size) == (THERMAL_SIZE, RGB_SIZE)

    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = ROTATION, TRANSLATION
    chain = {
        "cam0": {"camera_model": "pinhole", "distortion_model": "radtan", "resolution": list(THERMAL_SIZE),
                 "intrinsics": [400.0, 402.0, 161.3, 126.8], "distortion_coeffs": d_thermal[:4].tolist()},
        "cam1": {"camera_model": "pinhole", "distortion_model": "radtan", "resolution": list(RGB_SIZE),
                 "intrinsics": [610.0, 608.0, 322.5, 238.1], "distortion_coeffs": d_rgb[:4].tolist(),
                 "T_cn_cnm1": transform.tolist()},
    }
    kalibr_file = tmp_path / "camchain.yaml"
    kalibr_file.write_text(yaml.safe_dump(chain))
    kalibr = load_stereo_calibration(kalibr_file)
    np.testing.assert_allclose(kalibr.thermal.matrix, K_THERMAL)
    np.testing.assert_allclose(kalibr.rgb.matrix, K_RGB)
    np.testing.assert_allclose(kalibr.translation, TRANSLATION)
    np.testing.assert_allclose(plane_homography(kalibr, DEPTH), plane_homography(calibration(), DEPTH))


def test_bad_calibrations_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(FusionInputError, match="does not exist"):
        load_stereo_calibration(tmp_path / "missing.yaml")
    partial = tmp_path / "partial.yaml"
    storage = cv2.FileStorage(str(partial), cv2.FILE_STORAGE_WRITE)
    storage.write("K1", K_THERMAL)
    storage.release()
    with pytest.raises(FusionInputError, match="lacks K2, R, T"):
        load_stereo_calibration(partial)
    with pytest.raises(FusionInputError, match="rotation"):
        StereoCalibration(calibration().thermal, calibration().rgb, np.eye(3) * 2, TRANSLATION)
    with pytest.raises(FusionInputError, match="9 rotation and 3 translation"):
        parse_extrinsics(np.eye(3), [0.1, 0.0])
    with pytest.raises(FusionInputError, match="finite"):
        parse_extrinsics(np.eye(3), [0.1, float("nan"), 0.0])
    with pytest.raises(FusionInputError, match="fx, fy"):
        CameraModel(np.zeros((3, 3)), (10, 10))
    with pytest.raises(FusionInputError, match="distortion"):
        CameraModel(K_RGB, RGB_SIZE, np.array([0.1, 0.2, 0.3]))


def test_shipped_example_calibration_gives_the_documented_homography() -> None:
    repo = Path(__file__).resolve().parents[2]
    calib = load_stereo_calibration(repo / "config" / "stereo_calibration_example.yaml")
    assert (calib.thermal.size, calib.rgb.size) == ((640, 512), (1280, 1024))
    assert calib.thermal.distorted and calib.rgb.distorted
    documented = re.search(r"# H\(10 m\) = (\[[^\]]+\])", (repo / "docs" / "ros_node.md").read_text())
    assert documented, "docs/ros_node.md lost the worked example"
    np.testing.assert_allclose(plane_homography(calib, 10.0).ravel(), json.loads(documented.group(1)), atol=1e-5)
