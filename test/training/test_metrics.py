"""Tests of ivif_ros.training.metrics: hand-computed values, invariants, and the reference CSV."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from ivif_ros.data import data_root
from ivif_ros.training import metrics
from ivif_ros.training.metrics import METRIC_NAMES, compute_metrics, to_gray_u8

REPO = Path(__file__).resolve().parents[2]


def _data_root() -> Path:
    return data_root() or REPO.parent / "shared" / "data"


@pytest.fixture(scope="module")
def textured() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (64, 80)), (0, 0), 2.0)
    a = np.clip(base * 1.5 - 40, 0, 255).astype(np.uint8)
    b = np.clip(255 - base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    return a, b


class TestLuminance:
    def test_gray_passthrough_and_equal_channels(self) -> None:
        gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
        assert to_gray_u8(gray) is gray
        np.testing.assert_array_equal(to_gray_u8(np.dstack([gray] * 3)), gray)

    def test_octave_weights_rounded_half_away(self) -> None:
        pixel = np.array([[[10, 20, 30]]], np.uint8)  # B, G, R
        expected = math.floor(0.298936021293775 * 30 + 0.587043074451121 * 20 + 0.114020904255103 * 10 + 0.5)
        assert to_gray_u8(pixel)[0, 0] == expected == 22

    def test_float_is_rounded_and_clipped(self) -> None:
        np.testing.assert_array_equal(to_gray_u8(np.array([[-3.0, 2.5, 300.0]])), [[0, 3, 255]])

    def test_bad_shape(self) -> None:
        with pytest.raises(ValueError, match="shape"):
            to_gray_u8(np.zeros((2, 2, 2)))


# Qabf of F = A = B: strength term Tg/(1 + e^{kg·(g − Dg)}) → Tg (the g_S == g_F quirk gives G = g ≥ 1),
# orientation term Ta/(1 + e^{ka·(1 − Da)}).
QABF_IDENTICAL = 0.9994 * 0.9879 / (1 + math.exp(-22 * (1 - 0.8)))


class TestHandComputed:
    """Values worked out by hand on tiny arrays."""

    def test_entropy_two_levels_and_uniform(self) -> None:
        assert metrics.entropy(np.array([[0, 0, 255, 255]], np.uint8)) == pytest.approx(1.0)
        assert metrics.entropy(np.arange(256, dtype=np.uint8).reshape(16, 16)) == pytest.approx(8.0)

    def test_spatial_frequency(self) -> None:
        # 2×2 [[0, 2], [4, 6]]: row diffs 2, 2; column diffs 4, 4; both sums / (M·N = 4).
        image = np.array([[0, 2], [4, 6]], np.uint8)
        assert metrics.spatial_frequency(image) == pytest.approx(math.sqrt(8 / 4 + 32 / 4))

    def test_average_gradient(self) -> None:
        # Only pixel (0,0) has both forward neighbours: sqrt((2² + 4²)/2) / (M·N = 4).
        image = np.array([[0, 2], [4, 6]], np.uint8)
        assert metrics.average_gradient(image) == pytest.approx(math.sqrt(10) / 4)

    def test_standard_deviation_is_sample(self) -> None:
        expected = np.std([0, 2, 4, 6], ddof=1)
        assert metrics.standard_deviation(np.array([[0, 2], [4, 6]], np.uint8)) == pytest.approx(expected)

    def test_edge_intensity_of_a_ramp(self) -> None:
        # Horizontal ramp of slope 1: Sobel x-response 8 inside and 4 at the replicated borders (2 of 4 columns).
        ramp = np.tile(np.arange(4, dtype=np.uint8), (4, 1))
        assert metrics.edge_intensity(ramp) == pytest.approx((8 + 8 + 4 + 4) / 4)

    def test_cross_entropy(self) -> None:
        a = np.array([[0, 0, 1, 1]], np.uint8)
        b = np.array([[0, 0, 0, 0]], np.uint8)
        f = np.array([[0, 0, 0, 1]], np.uint8)
        # D(A‖F) = ½log2(½/¾) + ½log2(½/¼); D(B‖F) = log2(1/¾).
        expected = (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2) + math.log2(4 / 3)) / 2
        assert metrics.cross_entropy(a, b, f) == pytest.approx(expected)

    def test_mutual_information(self) -> None:
        a = np.array([[0, 0, 1, 1]], np.uint8)
        b = np.array([[5, 5, 5, 5]], np.uint8)
        # F = A: MI(A,F) = H(A) = 1 bit; B constant: MI(B,F) = 0.
        assert metrics.mutual_information(a, b, a) == pytest.approx(1.0)

    def test_scd(self) -> None:
        a = np.array([[0, 1, 2, 3]], np.uint8)
        b = np.array([[3, 0, 1, 0]], np.uint8)
        f = np.array([[2, 1, 3, 2]], np.uint8)
        expected = np.corrcoef(f - b.astype(float), a)[0, 1] + np.corrcoef(f - a.astype(float), b)[0, 1]
        assert metrics.scd(a, b, f) == pytest.approx(expected)

    def test_qabf_and_nabf_of_a_step(self) -> None:
        step = np.zeros((6, 6), np.uint8)
        step[:, 3:] = 100
        # Identical edges everywhere (the zero-padded border included): the same Q on every edge pixel.
        assert metrics.qabf(step, step, step) == pytest.approx(QABF_IDENTICAL, rel=1e-6)
        assert metrics.nabf(step, step, step) == 0.0


class TestInvariants:
    def test_fused_equals_sources(self, textured) -> None:
        a, _ = textured
        scores = compute_metrics(a, a, a)
        assert scores["CE"] == pytest.approx(0.0)
        assert scores["Nabf"] == 0.0
        assert scores["MI"] == pytest.approx(2 * metrics.entropy(a))
        assert scores["VIFF"] == pytest.approx(1.0, abs=1e-3)
        assert scores["Qabf"] == pytest.approx(QABF_IDENTICAL, rel=1e-6)

    def test_fused_equals_one_source(self, textured) -> None:
        a, b = textured
        assert metrics.nabf(a, b, a) == 0.0
        assert metrics.scd(a, b, a) == pytest.approx(np.corrcoef(a.astype(float).ravel() - b.ravel(), a.ravel())[0, 1])

    def test_constant_images(self) -> None:
        constant = np.full((16, 16), 77, np.uint8)
        for name in ("EI", "SF", "EN", "SD", "DF", "CE", "MI", "Nabf", "SCD"):
            assert compute_metrics(constant, constant, constant, [name])[name] == pytest.approx(0.0), name
        # conv2 'same' zero-pads, so even a constant image has border edges (MATLAB convention).
        assert metrics.qabf(constant, constant, constant) == pytest.approx(QABF_IDENTICAL, rel=1e-6)
        assert math.isnan(metrics.qabf(np.zeros((8, 8)), np.zeros((8, 8)), constant[:8, :8]))

    @pytest.mark.parametrize("name", [n for n in METRIC_NAMES if n != "VIFF"])
    def test_symmetry_in_sources(self, textured, name) -> None:
        a, b = textured
        fused = ((a.astype(int) + b) // 2).astype(np.uint8)
        assert compute_metrics(a, b, fused, [name])[name] == pytest.approx(compute_metrics(b, a, fused, [name])[name])

    def test_viff_symmetry_up_to_ties(self, textured) -> None:
        a, b = textured
        fused = np.maximum(a, b)
        assert metrics.viff(a, b, fused) == pytest.approx(metrics.viff(b, a, fused), rel=1e-2)

    def test_nabf_grows_with_noise(self, textured) -> None:
        a, b = textured
        fused = ((a.astype(int) + b) // 2).astype(np.float64)
        rng = np.random.default_rng(1)
        values = [
            metrics.nabf(a, b, np.clip(fused + rng.normal(0, sigma, fused.shape), 0, 255).astype(np.uint8))
            for sigma in (0, 5, 20)
        ]
        assert values[0] < values[1] < values[2]

    def test_colour_fused_is_scored_on_luminance(self, textured) -> None:
        a, b = textured
        fused_bgr = np.dstack([b, a, b])
        assert compute_metrics(a, b, fused_bgr) == pytest.approx(compute_metrics(a, b, to_gray_u8(fused_bgr)))

    def test_errors(self, textured) -> None:
        a, b = textured
        with pytest.raises(ValueError, match="unknown metric"):
            compute_metrics(a, b, a, ["PSNR"])
        with pytest.raises(ValueError, match="same size"):
            compute_metrics(a, b, a[:10])

    def test_directions(self) -> None:
        assert [n for n, higher in metrics.HIGHER_IS_BETTER.items() if not higher] == ["CE", "Nabf"]
        assert len(METRIC_NAMES) == 11


def _reference_fusion(ir: np.ndarray, vis: np.ndarray, kind: str) -> np.ndarray:
    mean = np.floor((ir.astype(np.float64) + vis) / 2 + 0.5)
    if kind == "mean":
        return mean.astype(np.uint8)
    if kind == "max":
        return np.maximum(ir, vis)
    stripes = np.where((np.arange(ir.shape[1]) // 2) % 2 == 0, 1.0, -1.0)[None, :]
    return np.clip(mean + 20 * stripes, 0, 255).astype(np.uint8)


def test_reference_csv_rows() -> None:
    """All 12 rows of ../shared/metric-reference.csv within 1 % (observed: < 1e-5)."""
    root = _data_root()
    reference = root.parent / "metric-reference.csv"
    if not root.is_dir() or not reference.is_file():
        pytest.skip(f"shared data not found at {root} (set IVIF_DATA) or {reference} missing")
    with reference.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12
    sources: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for row in rows:
        key = (row["set"], row["pair"])
        if key not in sources:
            sources[key] = tuple(
                to_gray_u8(cv2.imread(str(root / row["set"] / role / row["pair"]), cv2.IMREAD_UNCHANGED))
                for role in ("ir", "vis")
            )
        ir, vis = sources[key]
        scores = compute_metrics(ir, vis, _reference_fusion(ir, vis, row["fused"]))
        for name in METRIC_NAMES:
            assert scores[name] == pytest.approx(float(row[name]), rel=0.01), (key, row["fused"], name)


class TestTargetRetention:
    @staticmethod
    def _scene() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(11)
        thermal = np.clip(rng.normal(60, 5, (96, 96)), 0, 255).astype(np.uint8)
        thermal[42:54, 42:54] = 220  # the hot target (1.6 % of the pixels)
        visible = np.clip(rng.normal(120, 5, (96, 96)), 0, 255).astype(np.uint8)
        return thermal, visible

    def test_kept_target_scores_one(self) -> None:
        thermal, _ = self._scene()
        assert metrics.target_retention(thermal, thermal) == pytest.approx(1.0)
        brighter = np.clip(thermal.astype(int) + 20, 0, 255).astype(np.uint8)  # an offset does not change contrast
        assert metrics.target_retention(thermal, brighter) == pytest.approx(1.0, abs=0.02)

    def test_faded_target_scores_low(self) -> None:
        thermal, visible = self._scene()
        assert abs(metrics.target_retention(thermal, visible)) < 0.1
        half = ((thermal.astype(np.float64) + visible) / 2.0 + 0.5).astype(np.uint8)
        assert metrics.target_retention(thermal, half) == pytest.approx(0.5, abs=0.05)

    def test_colour_fused_uses_luminance(self) -> None:
        thermal, _ = self._scene()
        assert metrics.target_retention(thermal, np.dstack([thermal] * 3)) == pytest.approx(1.0)

    def test_no_hot_region_is_nan(self) -> None:
        flat = np.full((32, 32), 90, np.uint8)
        assert math.isnan(metrics.target_retention(flat, flat))

    def test_size_mismatch(self) -> None:
        thermal, _ = self._scene()
        with pytest.raises(ValueError, match="same size"):
            metrics.target_retention(thermal, thermal[:50])


class TestSequenceFlicker:
    def test_static_stream_does_not_flicker(self) -> None:
        frame = np.full((16, 16), 100, np.uint8)
        changing = [np.full((16, 16), 100 + 4 * i, np.uint8) for i in range(5)]
        result = metrics.sequence_flicker(changing, [frame] * 5, [frame] * 5)
        assert result["fused_change"] == 0.0 and result["infrared_change"] == pytest.approx(4.0)
        assert result["flicker"] == 0.0

    def test_amplified_changes_score_above_one(self) -> None:
        inputs = [np.full((16, 16), 100 + 2 * i, np.uint8) for i in range(6)]
        fused = [np.full((16, 16), 50 + 6 * i, np.uint8) for i in range(6)]
        result = metrics.sequence_flicker(inputs, inputs, fused)
        assert result["fused_change"] == pytest.approx(6.0)
        assert result["flicker"] == pytest.approx(3.0)

    def test_needs_two_equal_length_streams(self) -> None:
        frame = np.zeros((8, 8), np.uint8)
        with pytest.raises(ValueError, match=">= 2 frames"):
            metrics.sequence_flicker([frame], [frame], [frame])
        with pytest.raises(ValueError, match=">= 2 frames"):
            metrics.sequence_flicker([frame] * 3, [frame] * 2, [frame] * 3)
