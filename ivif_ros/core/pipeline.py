"""The fusion pipeline: prepare → enhance → detect → weights → fuse, one implementation for all.

The CLI, the ROS node, the bag tools, the evaluation and the benchmarks call ``FusionPipeline``.

Modes:
    ``default`` — the product: robust thermal stretch, partial visible enhancement, a fast
    fully-convolutional detector at reduced resolution, soft weights refined edge-aware by a guided
    filter, base/detail fusion.
    ``seed`` — SEED-ALGORITHM.md reproduced faithfully at native resolution: full §3 enhancement,
    the three-path detector over 32×32 windows at stride 8 (4 from 500 px), vote map → decision map
    → distance-transform blending → min–max → Single-Scale Retinex.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import enhance, fusion, multiscale, weight_map
from .errors import FusionInputError
from .registration import match_thermal_size
from .temporal import StreamNormaliser

__all__ = ["FusionConfig", "FusionResult", "FusionPipeline", "RUNTIME_FIELDS", "prepare_pair"]

LOGGER = logging.getLogger("ivif_ros.core")

MODES = ("default", "seed")
FUSION_SCHEMES = ("pyramid", "two_scale")
MIN_SIDE = 8
# Config fields that may change while a pipeline runs (the node exposes them as live parameters).
RUNTIME_FIELDS = frozenset(
    {
        "mode",
        "thermal_stretch",
        "thermal_percentiles",
        "visible_enhance",
        "thermal_enhance",
        "target_contrast",
        "enhance_detail_gain",
        "detector_scale",
        "weight_temperature",
        "smoothing_radius",
        "smoothing_eps",
        "base_radius",
        "base_temperature",
        "base_complement",
        "detector_mix",
        "detail_sigma",
        "detail_gain",
        "output_stretch",
        "seed_retinex",
        "seed_blend_radius",
        "fusion_scheme",
        "pyramid_levels",
        "match_threshold",
        "match_radius",
        "selection_sharpness",
        "temporal_smoothing",
        "scene_cut",
    }
)


@dataclass
class FusionConfig:
    """Every tunable of the pipeline, with the product defaults.

    Attributes:
        mode: ``"default"`` or ``"seed"``.
        thermal_stretch: ``auto`` (percentile for 16-bit/float, min–max for 8-bit), ``minmax``, ``percentile``.
        thermal_percentiles: lower/upper percentile of the robust stretch.
        visible_enhance: 0..1, share of the §3 enhanced visible luminance mixed with the original.
        thermal_enhance: 0..1, the same for the thermal image (the paper: 0).
        target_contrast: base contrast ratio after compression (paper: 4).
        enhance_detail_gain: log-detail multiplier in the enhancement (paper: 1).
        detector_scale: detector input size relative to the visible frame (default mode).
        weight_temperature: divides the window scores before the sigmoid (softer weights when > 1).
        smoothing_radius: guided-filter radius (px, full resolution) of the weight refinement; 0 = off.
        smoothing_eps: guided-filter eps (0..1 intensity scale) of the weight refinement.
        base_radius: radius of the base/detail split of the fusion (px).
        base_temperature: softness (grey levels) of the brightness selection of the base layers.
        base_complement: share of the darker source's zero-mean base added to the fused base.
        detector_mix: share of the blur detector in the detail weight map (the rest: local detail
            energy at ``detail_sigma``); 1 = detector only.
        fusion_scheme: ``pyramid`` (Laplacian pyramid, per-band match/salience rule under the
            detector's weights, ``core.multiscale``) or ``two_scale`` (one base/detail split at
            ``base_radius``, the previous default).
        pyramid_levels: band-pass levels of the pyramid scheme.
        match_threshold: per-band local match above which the bands are averaged with the detector's
            weights (below it the band of larger local energy is selected); Liu et al.: 0.6.
        match_radius: radius (px) of the window of the local energies and the match.
        selection_sharpness: 0 = hard selection where the bands disagree, else the sharpness of a
            soft selection ``sigmoid(s·log(E_vis/E_ir))``.
        temporal_smoothing: in stream mode, weight of the history in the exponential moving average
            of the thermal stretch and output stretch bounds (0 = per frame).
        scene_cut: in stream mode, mean absolute change (grey levels) of the visible thumbnail that
            counts as a new scene (the smoothed bounds restart).
        detail_sigma: Gaussian sigma (px) of the local detail energy.
        detail_gain: multiplier of the fused detail layer.
        output_stretch: % of darkest/brightest fused pixels saturated by the final linear stretch (0 = off).
        seed_stride: seed mode window stride; 0 = the paper's rule (8, or 4 from 500 px).
        seed_blend_radius: seed mode distance-transform blending half-width (px).
        seed_retinex: seed mode final Single-Scale Retinex.
        retinex_sigma: Gaussian sigma of the Retinex surround.
        size_tolerance: relative aspect-ratio tolerance of the IR→visible resize policy.
        max_pixels: larger inputs are refused (protects a robot from absurd messages).
    """

    mode: str = "default"
    thermal_stretch: str = "auto"
    thermal_percentiles: tuple[float, float] = (0.5, 99.5)
    visible_enhance: float = 0.0
    thermal_enhance: float = 0.0
    target_contrast: float = 4.0
    enhance_detail_gain: float = 1.0
    detector_scale: float = 0.5
    weight_temperature: float = 1.0
    smoothing_radius: int = 8
    smoothing_eps: float = 1e-3
    base_radius: int = 16
    base_temperature: float = 10.0
    base_complement: float = 0.3
    detector_mix: float = 1.0
    detail_sigma: float = 2.0
    detail_gain: float = 1.0
    output_stretch: float = 0.5
    fusion_scheme: str = "pyramid"
    pyramid_levels: int = 4
    match_threshold: float = 0.6
    match_radius: int = 2
    selection_sharpness: float = 0.0
    temporal_smoothing: float = 0.8
    scene_cut: float = 30.0
    seed_stride: int = 0
    seed_blend_radius: float = 16.0
    seed_retinex: bool = True
    retinex_sigma: float = 300.0
    size_tolerance: float = 0.02
    max_pixels: int = 4096 * 4096

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        checks = [
            (self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}"),
            (self.thermal_stretch in ("auto", "minmax", "percentile"), f"bad thermal_stretch {self.thermal_stretch!r}"),
            (0.0 <= self.thermal_percentiles[0] < self.thermal_percentiles[1] <= 100.0,
             f"thermal_percentiles must be 0 <= low < high <= 100, got {self.thermal_percentiles}"),
            (0.0 <= self.visible_enhance <= 1.0, f"visible_enhance must be in [0, 1], got {self.visible_enhance}"),
            (0.0 <= self.thermal_enhance <= 1.0, f"thermal_enhance must be in [0, 1], got {self.thermal_enhance}"),
            (1.0 < self.target_contrast <= 1000.0, f"target_contrast must be in (1, 1000], got {self.target_contrast}"),
            (0.0 <= self.enhance_detail_gain <= 10.0, f"enhance_detail_gain must be in [0, 10], got {self.enhance_detail_gain}"),
            (0.05 <= self.detector_scale <= 2.0, f"detector_scale must be in [0.05, 2], got {self.detector_scale}"),
            (0.01 <= self.weight_temperature <= 100.0, f"weight_temperature must be in [0.01, 100], got {self.weight_temperature}"),
            (0 <= self.smoothing_radius <= 256, f"smoothing_radius must be in [0, 256], got {self.smoothing_radius}"),
            (0.0 < self.smoothing_eps <= 1.0, f"smoothing_eps must be in (0, 1], got {self.smoothing_eps}"),
            (1 <= self.base_radius <= 256, f"base_radius must be in [1, 256], got {self.base_radius}"),
            (0.0 <= self.detail_gain <= 10.0, f"detail_gain must be in [0, 10], got {self.detail_gain}"),
            (0.1 <= self.base_temperature <= 1000.0, f"base_temperature must be in [0.1, 1000], got {self.base_temperature}"),
            (0.0 <= self.base_complement <= 1.0, f"base_complement must be in [0, 1], got {self.base_complement}"),
            (0.0 <= self.detector_mix <= 1.0, f"detector_mix must be in [0, 1], got {self.detector_mix}"),
            (0.3 <= self.detail_sigma <= 32.0, f"detail_sigma must be in [0.3, 32], got {self.detail_sigma}"),
            (0.0 <= self.output_stretch < 50.0, f"output_stretch must be in [0, 50), got {self.output_stretch}"),
            (self.fusion_scheme in FUSION_SCHEMES, f"fusion_scheme must be one of {FUSION_SCHEMES}, got {self.fusion_scheme!r}"),
            (1 <= self.pyramid_levels <= 8, f"pyramid_levels must be in [1, 8], got {self.pyramid_levels}"),
            (-1.0 <= self.match_threshold <= 1.0, f"match_threshold must be in [-1, 1], got {self.match_threshold}"),
            (1 <= self.match_radius <= 8, f"match_radius must be in [1, 8], got {self.match_radius}"),
            (0.0 <= self.selection_sharpness <= 100.0, f"selection_sharpness must be in [0, 100], got {self.selection_sharpness}"),
            (0.0 <= self.temporal_smoothing < 1.0, f"temporal_smoothing must be in [0, 1), got {self.temporal_smoothing}"),
            (self.scene_cut > 0, f"scene_cut must be > 0, got {self.scene_cut}"),
            (self.seed_stride in (0, 1, 2, 4, 8, 16, 32), f"seed_stride must be 0 or a divisor of 32, got {self.seed_stride}"),
            (self.seed_blend_radius > 0, f"seed_blend_radius must be > 0, got {self.seed_blend_radius}"),
            (self.retinex_sigma > 0, f"retinex_sigma must be > 0, got {self.retinex_sigma}"),
            (0.0 <= self.size_tolerance <= 1.0, f"size_tolerance must be in [0, 1], got {self.size_tolerance}"),
            (self.max_pixels >= MIN_SIDE * MIN_SIDE, f"max_pixels too small: {self.max_pixels}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class FusionResult:
    """Outputs of one fused pair.

    Attributes:
        fused: uint8 H×W (gray visible) or H×W×3 BGR (colour visible), the visible frame's size.
        weights: float32 H×W visible share in [0, 1].
        timings: milliseconds per stage (prepare, enhance, detect, weights, fuse).
        warnings: non-fatal notes about the inputs (e.g. the IR was resized).
    """

    fused: np.ndarray
    weights: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def weights_u8(self) -> np.ndarray:
        """uint8 view of the weight map (255 = all visible)."""
        return (self.weights * 255.0 + 0.5).astype(np.uint8)

    def weights_colored(self) -> np.ndarray:
        """BGR uint8 colour-mapped weight map (TURBO; red = visible, blue = infrared)."""
        return cv2.applyColorMap(self.weights_u8(), cv2.COLORMAP_TURBO)


def _check_finite_and_size(image: np.ndarray, role: str, max_pixels: int) -> None:
    if not isinstance(image, np.ndarray):
        raise FusionInputError(f"{role} image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or image.size == 0:
        raise FusionInputError(f"{role} image must be a non-empty H×W or H×W×C array, got shape {image.shape}")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise FusionInputError(f"{role} image {width}x{height} is too small (minimum {MIN_SIDE}x{MIN_SIDE})")
    if height * width > max_pixels:
        raise FusionInputError(f"{role} image {width}x{height} exceeds max_pixels={max_pixels}")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise FusionInputError(f"{role} image has {image.shape[2]} channels (expected 1, 3 or 4)")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise FusionInputError(f"{role} image contains NaN or infinite values")
    if image.dtype.kind not in "uf" or image.dtype.itemsize > 8 or image.dtype == np.uint32 or image.dtype == np.uint64:
        raise FusionInputError(f"{role} image has unsupported dtype {image.dtype} (use uint8, uint16 or float)")


def _thermal_to_single_channel(ir: np.ndarray) -> np.ndarray:
    if ir.ndim == 2:
        return ir
    if ir.shape[2] == 1:
        return ir[:, :, 0]
    colour = ir[:, :, :3]
    if np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(colour[:, :, 0], colour[:, :, 2]):
        return colour[:, :, 0]
    if colour.dtype != np.uint8:
        raise FusionInputError(f"infrared image is {ir.shape[2]}-channel {ir.dtype}; give one channel")
    return cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_BGR2GRAY)


def _visible_to_uint8(vis: np.ndarray, warnings: list[str]) -> np.ndarray:
    if vis.ndim == 3 and vis.shape[2] == 1:
        vis = vis[:, :, 0]
    if vis.ndim == 3 and vis.shape[2] == 4:
        vis = vis[:, :, :3]
    if vis.dtype == np.uint8:
        return vis
    if vis.dtype == np.uint16:
        warnings.append("16-bit visible image scaled to 8 bits (value / 257)")
        return (vis.astype(np.float32) * np.float32(1.0 / 257.0) + 0.5).astype(np.uint8)
    if vis.dtype.kind == "f":
        low, high = float(vis.min()), float(vis.max())
        if low < 0.0 or high > 1.0:
            raise FusionInputError(f"float visible image must be in [0, 1], got range [{low:.4g}, {high:.4g}]")
        return (vis.astype(np.float32) * 255.0 + 0.5).astype(np.uint8)
    raise FusionInputError(f"visible image has unsupported dtype {vis.dtype}")


def prepare_pair(
    ir: np.ndarray, vis: np.ndarray, config: FusionConfig
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate a pair and bring it to the core's conventions.

    Returns:
        (thermal H×W in its own dtype, visible uint8 H×W or H×W×3 BGR, warnings); the thermal image
        has the visible frame's size (size policy of ``registration.match_thermal_size``).

    Raises:
        FusionInputError: the message names the problem.
    """
    _check_finite_and_size(ir, "infrared", config.max_pixels)
    _check_finite_and_size(vis, "visible", config.max_pixels)
    warnings: list[str] = []
    thermal = _thermal_to_single_channel(ir)
    visible = _visible_to_uint8(vis, warnings)
    thermal, size_warning = match_thermal_size(thermal, visible.shape[:2], config.size_tolerance)
    if size_warning:
        warnings.append(size_warning)
    return thermal, np.ascontiguousarray(visible), warnings


class FusionPipeline:
    """Fuses registered infrared/visible pairs; one instance per stream (not thread-safe).

    Args:
        config: pipeline settings (``FusionConfig()`` when None).
        model: detector for the default mode: None = the shipped default weights, or a path.
        seed_model: detector for the seed mode: None = shipped seed weights when present.
        backend: ``auto``, ``torch``, ``onnxruntime`` or ``tensorrt``.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        gpu_pipeline: default mode through ``core.torch_pipeline`` (all stages as device ops):
            None = when the detector runs on CUDA, True = always (also on CPU, for tests), False = never.
        backend_options: keyword options of the default-mode backend (e.g. ``intra_op_threads``,
            ``fp16``, ``cuda_graphs``; see ``ivif_ros.backends``).
        stream: the pairs are consecutive frames of one stream: the normalisation bounds (thermal
            stretch, output stretch) are smoothed over frames (``temporal_smoothing``) and restart on
            a scene cut or size change (``core.temporal``). False: every pair on its own (stills).

    Raises:
        ValueError: invalid config. ``ModelError`` / ``BackendError`` surface when a detector is
        first needed (at construction for the configured mode).
    """

    def __init__(
        self,
        config: FusionConfig | None = None,
        model: str | Path | None = None,
        seed_model: str | Path | None = None,
        backend: str = "auto",
        device: str = "auto",
        gpu_pipeline: bool | None = None,
        backend_options: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> None:
        self.config = config or FusionConfig()
        self.config.validate()
        self._model_specs = {"default": model, "seed": seed_model}
        self._backend_name = backend
        self._backend_options = dict(backend_options or {})
        self._device = device
        self._detectors: dict[str, Any] = {}
        self._model_infos: dict[str, Any] = {}
        self._detector(self.config.mode)
        self.stream = stream
        self._normaliser = StreamNormaliser(self.config.temporal_smoothing, self.config.scene_cut)
        # >>> torch path (core/torch_pipeline.py, owned by the backends/perf engineer) >>>
        self._gpu_pipeline, self._torch_path = gpu_pipeline, None
        # <<< torch path <<<

    # ---- configuration -------------------------------------------------------------------
    def update(self, **changes: Any) -> None:
        """Change runtime-safe config fields atomically (all or nothing).

        Raises:
            ValueError: unknown/non-runtime field or invalid value; the config is left unchanged.
        """
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"not runtime-changeable: {sorted(unknown)}")
        candidate = dataclasses.replace(self.config, **changes)
        candidate.validate()
        if candidate.mode != self.config.mode:
            self._detector(candidate.mode)
        self.config = candidate

    def reset_stream(self) -> None:
        """Forget the stream's smoothed normalisation (e.g. after a seek or a camera restart)."""
        self._normaliser.reset()

    def describe(self) -> dict[str, Any]:
        """Backend, device and model facts of the active mode (for logs and diagnostics)."""
        mode = self.config.mode
        backend = self._detector(mode)
        info = self._model_infos[mode]
        return {
            "mode": mode,
            **backend.describe(),
            "model": getattr(info, "name", "?"),
            "model_path": str(getattr(info, "path", "") or ""),
            "trained": bool(getattr(info, "trained", False)),
        }

    def _detector(self, mode: str):
        if mode not in self._detectors:
            from ivif_ros.backends import create_backend
            from ivif_ros.models import load_model

            spec = self._model_specs[mode]
            if mode == "seed" and spec is None:
                spec = "seed"
            net, info = load_model(spec)
            if not info.trained:
                LOGGER.warning(
                    "UNTRAINED %s detector in use (%s): weight maps are meaningless until trained weights are loaded",
                    mode, getattr(info, "name", "?"),
                )
            backend = "torch" if mode == "seed" and self._backend_name == "auto" else self._backend_name
            options = self._backend_options if mode == "default" else {}
            self._detectors[mode] = create_backend(backend, model=net, device=self._device, **options)
            self._model_infos[mode] = info
        return self._detectors[mode]

    # ---- fusion --------------------------------------------------------------------------
    def __call__(self, ir: np.ndarray, vis: np.ndarray) -> FusionResult:
        """Fuse one pair.

        Args:
            ir: infrared H×W (uint8/uint16/finite float; 3-channel gray is collapsed).
            vis: visible H×W or H×W×3 BGR uint8 (16-bit is scaled; float must be in [0, 1]).

        Returns:
            FusionResult at the visible frame's size.

        Raises:
            FusionInputError: invalid input (message names the problem).
        """
        config = self.config
        # >>> torch path: the CUDA-resident default mode (decided once, on first use) >>>
        if config.mode == "default" and config.fusion_scheme == "two_scale" and not self.stream and self._gpu_pipeline is not False:
            if self._torch_path is None:
                backend = self._detector("default")
                if self._gpu_pipeline or str(backend.device).startswith("cuda"):
                    from .torch_pipeline import TorchFusionPath

                    self._torch_path = TorchFusionPath(backend)
                else:
                    self._gpu_pipeline = False
            if self._torch_path is not None:
                return self._torch_path(ir, vis, config)
        # <<< torch path <<<
        timings: dict[str, float] = {}
        start = time.perf_counter()
        thermal, visible, warnings = prepare_pair(ir, vis, config)
        ycrcb = fusion.to_ycrcb(visible) if visible.ndim == 3 else None  # converted once, reused to merge
        visible_lum = (ycrcb[:, :, 0] if ycrcb is not None else visible).astype(np.float32)
        mark = _lap(timings, "prepare", start)
        if config.mode == "seed":
            fused_lum, weights = self._fuse_seed(thermal, visible_lum, timings, mark)
        else:
            fused_lum, weights = self._fuse_default(thermal, visible_lum, timings, mark)
        mark = time.perf_counter()
        if ycrcb is not None:
            fused = fusion.merge_luminance(visible, fused_lum, ycrcb)
        else:
            fused = np.clip(fused_lum + 0.5, 0, 255).astype(np.uint8)
        timings["fuse"] = timings.get("fuse", 0.0) + (time.perf_counter() - mark) * 1e3
        return FusionResult(fused=fused, weights=weights, timings=timings, warnings=warnings)

    def _detect(self, mode: str, visible_lum: np.ndarray, thermal_lum: np.ndarray, scale: float):
        """Window scores for the pair at ``scale`` (at least one 32×32 window)."""
        backend = self._detector(mode)
        height, width = visible_lum.shape
        scale = max(scale, backend.window / min(height, width))
        if abs(scale - 1.0) > 1e-6:
            size = (max(backend.window, round(width * scale)), max(backend.window, round(height * scale)))
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            visible_lum = cv2.resize(visible_lum, size, interpolation=interpolation)
            thermal_lum = cv2.resize(thermal_lum, size, interpolation=interpolation)
        pair = np.stack([visible_lum, thermal_lum])[None] * np.float32(1.0 / 255.0)
        scores = backend(pair)[0, 0]
        return scores, visible_lum.shape, backend.window, backend.stride

    def _normalise(self, name: str, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
        """Stream mode: the smoothed version of this frame's ``bounds``; stills: ``bounds``."""
        if not self.stream or bounds is None:
            return bounds
        self._normaliser.smoothing = self.config.temporal_smoothing
        self._normaliser.scene_cut = self.config.scene_cut
        return self._normaliser.smooth(name, *bounds)

    def _fuse_default(self, thermal, visible_lum, timings, mark):
        config = self.config
        if self.stream:
            self._normaliser.scene_cut = config.scene_cut
            self._normaliser.begin_frame(visible_lum)
        low, high = self._normalise(
            "thermal", enhance.thermal_bounds(thermal, config.thermal_stretch, config.thermal_percentiles)
        )
        thermal_lum = enhance.apply_bounds(thermal, low, high)
        if config.thermal_enhance > 0:
            enhanced = enhance.enhance_luminance(
                thermal_lum, target_contrast=config.target_contrast, detail_gain=config.enhance_detail_gain
            )
            thermal_lum = fusion.blend(enhanced, thermal_lum, np.float32(config.thermal_enhance))
        if config.visible_enhance > 0:
            enhanced = enhance.enhance_luminance(
                visible_lum, target_contrast=config.target_contrast, detail_gain=config.enhance_detail_gain
            )
            visible_lum = fusion.blend(enhanced, visible_lum, np.float32(config.visible_enhance))
        mark = _lap(timings, "enhance", mark)
        scores, det_shape, window, stride = self._detect("default", visible_lum, thermal_lum, config.detector_scale)
        mark = _lap(timings, "detect", mark)
        weights = weight_map.soft_weight_map(scores, window, stride, det_shape, config.weight_temperature)
        height, width = visible_lum.shape
        if weights.shape != (height, width):
            weights = cv2.resize(weights, (width, height), interpolation=cv2.INTER_LINEAR)
        if config.fusion_scheme == "pyramid":
            if config.detector_mix < 1.0:
                energy = fusion.detail_energy_weights(
                    *(layers[1] for layers in (fusion.split_base_detail(visible_lum, config.base_radius),
                                               fusion.split_base_detail(thermal_lum, config.base_radius))),
                    config.detail_sigma,
                )
                weights = fusion.blend(weights, energy, np.float32(config.detector_mix))
            mark = _lap(timings, "weights", mark)
            fused = multiscale.pyramid_fuse(
                visible_lum, thermal_lum, weights, config.pyramid_levels, config.match_threshold, config.match_radius,
                config.selection_sharpness, config.base_temperature, config.base_complement, config.detail_gain,
            )
        else:
            guide = np.maximum(visible_lum, thermal_lum)
            weights = weight_map.refine_weights(weights, guide, config.smoothing_radius, config.smoothing_eps)
            visible_layers = fusion.split_base_detail(visible_lum, config.base_radius)
            thermal_layers = fusion.split_base_detail(thermal_lum, config.base_radius)
            if config.detector_mix < 1.0:
                energy = fusion.detail_energy_weights(visible_layers[1], thermal_layers[1], config.detail_sigma)
                weights = fusion.blend(weights, energy, np.float32(config.detector_mix))
            mark = _lap(timings, "weights", mark)
            fused = fusion.saliency_detail_fuse(
                visible_layers, thermal_layers, weights, config.base_temperature, config.base_complement,
                config.detail_gain,
            )
        fused = fusion.apply_stretch(fused, self._normalise("output", fusion.stretch_bounds(fused, config.output_stretch)))
        _lap(timings, "fuse", mark)
        return fused, weights

    def _fuse_seed(self, thermal, visible_lum, timings, mark):
        config = self.config
        thermal_lum = enhance.minmax_to_255(thermal)
        visible_lum = enhance.enhance_luminance(visible_lum)
        mark = _lap(timings, "enhance", mark)
        height, width = visible_lum.shape
        backend = self._detector("seed")
        stride = config.seed_stride or (4 if max(height, width) >= 500 else 8)
        if getattr(backend, "set_stride", None) is not None:
            backend.set_stride(stride)
        scores, det_shape, window, stride = self._detect("seed", visible_lum, thermal_lum, 1.0)
        mark = _lap(timings, "detect", mark)
        weights = weight_map.seed_weight_map(scores, window, stride, det_shape, config.seed_blend_radius)
        if weights.shape != (height, width):
            weights = cv2.resize(weights, (width, height), interpolation=cv2.INTER_LINEAR)
        mark = _lap(timings, "weights", mark)
        fused = enhance.minmax_to_255(fusion.blend(visible_lum, thermal_lum, weights))
        if config.seed_retinex:
            fused = fusion.single_scale_retinex(fused, config.retinex_sigma)
        _lap(timings, "fuse", mark)
        return fused, weights


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    now = time.perf_counter()
    timings[stage] = timings.get(stage, 0.0) + (now - since) * 1e3
    return now
