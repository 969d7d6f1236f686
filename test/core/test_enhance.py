import math

import numpy as np
import pytest

from ivif_ros.core.enhance import enhance_luminance, minmax_to_255, stretch_thermal
from ivif_ros.core.errors import FusionInputError


class TestStretchThermal:
    def test_minmax_8bit_spans_full_range(self):
        image = np.array([[10, 20], [30, 110]], np.uint8)
        out = stretch_thermal(image)  # auto -> min-max for 8-bit
        np.testing.assert_allclose(out, [[0, 25.5], [51, 255]], atol=1e-4)

    def test_percentile_ignores_hot_pixels_in_16bit(self):
        rng = np.random.default_rng(0)
        image = (21000 + 200 * rng.random((100, 100))).astype(np.uint16)
        image[0, :5] = 65535  # hot pixels
        minmax = stretch_thermal(image, "minmax")
        robust = stretch_thermal(image)  # auto -> percentile for 16-bit
        assert minmax[1:].std() < 2.0  # squashed by the outliers
        assert robust[1:].std() > 50.0
        assert robust.min() >= 0 and robust.max() <= 255

    def test_percentile_matches_numpy_percentile(self):
        image = np.arange(10000, dtype=np.uint16).reshape(100, 100)
        out = stretch_thermal(image, "percentile", (1.0, 99.0))
        low, high = np.percentile(image, [1.0, 99.0])
        expected = np.clip((image - low) * 255.0 / (high - low), 0, 255)
        assert np.abs(out - expected).max() < 0.1

    def test_float_input_and_constant_image(self):
        out = stretch_thermal(np.linspace(-20.0, 40.0, 400, dtype=np.float32).reshape(20, 20))
        assert out.dtype == np.float32 and out.min() == 0 and out.max() == 255
        np.testing.assert_array_equal(stretch_thermal(np.full((5, 5), 7, np.uint16)), 0)

    def test_bad_method_and_percentiles(self):
        image = np.zeros((4, 4), np.uint8)
        with pytest.raises(FusionInputError, match="stretch"):
            stretch_thermal(image, "gamma")
        with pytest.raises(FusionInputError, match="percentiles"):
            stretch_thermal(image, "percentile", (50.0, 10.0))


class TestEnhanceLuminance:
    def _scene(self):
        rng = np.random.default_rng(3)
        yy, xx = np.mgrid[0:200, 0:200]
        base = np.where(xx < 100, 20.0, 200.0)  # a dark half and a bright half
        texture = 5.0 * np.sin(yy * 0.8) * np.sin(xx * 0.8)
        return np.clip(base + texture + rng.normal(0, 0.5, base.shape), 0, 255).astype(np.float32)

    def test_output_range_and_dtype(self):
        out = enhance_luminance(self._scene())
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 255

    def test_base_contrast_is_compressed_to_target(self):
        image = self._scene()
        out = enhance_luminance(image, target_contrast=4.0)
        dark, bright = out[50:150, 30:70].mean(), out[50:150, 130:170].mean()
        original_ratio = (image[50:150, 130:170].mean() + 1) / (image[50:150, 30:70].mean() + 1)
        assert original_ratio > 8
        assert math.log((bright + 1) / (dark + 1)) < math.log(original_ratio)
        assert 2.5 < (bright + 1) / (dark + 1) < 6.0  # near the paper's target log(4)

    def test_detail_survives_and_dark_detail_is_amplified(self):
        image = self._scene()
        out = enhance_luminance(image)
        assert out[50:150, 30:70].std() > image[50:150, 30:70].std() * 1.5

    def test_flat_image_does_not_overflow(self):
        out = enhance_luminance(np.full((32, 32), 90.0, np.float32))
        assert np.isfinite(out).all()


def test_minmax_to_255():
    np.testing.assert_allclose(minmax_to_255(np.array([[2.0, 4.0]])), [[0.0, 255.0]])
