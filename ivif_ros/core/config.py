"""``FusionConfig``: every tunable of the fusion pipeline, each declared once with its schema.

Each field's :class:`~ivif_ros.core.settings.Setting` (help, range or choices, array length,
runtime flag) is the only place a range is written: ``validate()``, ``RUNTIME_FIELDS``, the node's
parameter descriptors and checks, ``--set`` on the command lines and ``config/fusion.yaml`` are
derived from it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .settings import check_fields, runtime_fields, setting

__all__ = ["FusionConfig", "RUNTIME_FIELDS", "MODES", "FUSION_SCHEMES", "MIN_SIDE"]

MODES = ("default", "seed")
FUSION_SCHEMES = ("pyramid", "two_scale")
MIN_SIDE = 8


@dataclass
class FusionConfig:
    """Every tunable of the pipeline, with the product defaults.

    ``dataclasses.fields(FusionConfig)`` lists them; each field's ``metadata["setting"]`` holds its
    help text, range and whether it may change at runtime (see ``ivif_ros.core.settings``).
    """

    mode: str = setting("default", "fusion mode: default = the product, seed = the paper's method (slow)",
                        choices=MODES, runtime=True)
    thermal_stretch: str = setting(
        "auto", "thermal to 0..255 (auto = percentile for 16-bit/float, min-max for 8-bit)",
        choices=("auto", "minmax", "percentile"), runtime=True)
    thermal_percentiles: tuple[float, float] = setting(
        (0.5, 99.5), "[low, high] percentiles of the robust thermal stretch",
        length=2, low=0.0, high=100.0, increasing=True, runtime=True)
    visible_enhance: float = setting(0.0, "share of the enhanced visible luminance mixed with the original",
                                     low=0.0, high=1.0, runtime=True)
    thermal_enhance: float = setting(0.0, "share of the enhanced thermal luminance (the paper: 0)",
                                     low=0.0, high=1.0, runtime=True)
    target_contrast: float = setting(4.0, "base contrast ratio after compression in the enhancement (paper: 4)",
                                     low=1.0, low_open=True, high=1000.0, runtime=True)
    enhance_detail_gain: float = setting(1.0, "log-detail multiplier of the enhancement (paper: 1)",
                                         low=0.0, high=10.0, runtime=True)
    detector_scale: float = setting(0.5, "detector input size relative to the visible frame (default mode)",
                                    low=0.05, high=2.0, runtime=True)
    weight_temperature: float = setting(1.0, "divides the window scores before the sigmoid (> 1 = softer weights)",
                                        low=0.01, high=100.0, runtime=True)
    smoothing_radius: int = setting(8, "guided-filter radius of the weight refinement, px at full resolution; 0 = off",
                                    low=0, high=256, runtime=True)
    smoothing_eps: float = setting(1e-3, "guided-filter eps of the weight refinement (0..1 intensity scale)",
                                   low=0.0, low_open=True, high=1.0, runtime=True)
    base_radius: int = setting(16, "radius of the base/detail split of the fusion, px", low=1, high=256, runtime=True)
    base_temperature: float = setting(10.0, "softness (grey levels) of the brightness selection of the base layers",
                                      low=0.1, high=1000.0, runtime=True)
    base_complement: float = setting(0.35, "share of the darker source's zero-mean base added to the fused base",
                                     low=0.0, high=1.0, runtime=True)
    detector_mix: float = setting(
        1.0, "share of the blur detector in the detail weights (rest: local detail energy); 1 = detector only",
        low=0.0, high=1.0, runtime=True)
    detail_sigma: float = setting(2.0, "Gaussian sigma of the local detail energy, px", low=0.3, high=32.0,
                                  runtime=True)
    detail_gain: float = setting(1.04, "multiplier of the fused detail layer", low=0.0, high=10.0, runtime=True)
    output_stretch: float = setting(
        0.5, "percent of darkest/brightest fused pixels saturated by the final linear stretch; 0 = off",
        low=0.0, high=50.0, high_open=True, runtime=True)
    fusion_scheme: str = setting(
        "pyramid", "default mode's fusion: pyramid = Laplacian pyramid, per-band match/salience rule under the "
        "detector's weights, bright base; two_scale = one base/detail split at base_radius (the earlier default)",
        choices=FUSION_SCHEMES, runtime=True)
    pyramid_levels: int = setting(4, "band-pass levels of the pyramid scheme", low=1, high=8, runtime=True)
    match_threshold: float = setting(
        0.6, "per-band local match above which bands are averaged with the detector's weights (else the band of "
        "larger local energy is taken); Liu et al.: 0.6", low=-1.0, high=1.0, runtime=True)
    match_radius: int = setting(2, "radius of the window of the band energies and the match, px",
                                low=1, high=8, runtime=True)
    selection_sharpness: float = setting(
        4.0, "0 = hard selection where the bands disagree, else the sharpness s of sigmoid(s*log(E_vis/E_ir))",
        low=0.0, high=100.0, runtime=True)
    selection_bias: float = setting(
        0.1, "pyramid: weight of the detector's log-odds added to log(E_vis/E_ir) where the bands disagree; "
        "0 = energies alone",
        low=0.0, high=10.0, runtime=True)
    base_bias: float = setting(
        1.5, "pyramid: weight of the detector's log-odds added to the brightness selection of the residual; "
        "0 = brightness alone",
        low=0.0, high=10.0, runtime=True)
    temporal_smoothing: float = setting(
        0.9, "stream mode: weight of the history in the moving averages of the stretch bounds and the anchored tone "
        "curves; 0 = per frame", low=0.0, high=1.0, high_open=True, runtime=True)
    scene_cut: float = setting(
        30.0, "stream mode: mean absolute change (grey levels) of the visible thumbnail that starts a new scene",
        low=0.0, low_open=True, high=255.0, runtime=True)
    seed_stride: int = setting(0, "seed mode window stride, px; 0 = the paper's rule (8, or 4 from 500 px)",
                               choices=(0, 1, 2, 4, 8, 16, 32))
    seed_blend_radius: float = setting(16.0, "seed mode distance-transform blending half-width, px",
                                       low=0.0, low_open=True, high=10000.0, runtime=True)
    seed_blend: str = setting("authors", "seed mode blending: authors = Model_Test.py's distance-transform formula "
                              "and Retinex, ramp = linear ramp of seed_blend_radius", choices=("authors", "ramp"),
                              runtime=True)
    seed_retinex: bool = setting(True, "seed mode final Single-Scale Retinex", runtime=True)
    retinex_sigma: float = setting(300.0, "Gaussian sigma of the Retinex surround, px",
                                   low=0.0, low_open=True, high=100000.0)
    size_tolerance: float = setting(0.02, "relative aspect-ratio tolerance of the thermal-to-visible resize policy",
                                    low=0.0, high=1.0)
    max_pixels: int = setting(4096 * 4096, "larger input frames are refused (width x height)",
                              low=MIN_SIDE * MIN_SIDE, high=1 << 30)

    def validate(self) -> None:
        """Check type, array length, NaN/inf and range of every field.

        Raises:
            FusionInputError: (a ``ValueError``) naming the first invalid field and its value.
        """
        check_fields(self)


#: Fields that may change while a pipeline runs (the node exposes them as live parameters).
RUNTIME_FIELDS = runtime_fields(FusionConfig)
