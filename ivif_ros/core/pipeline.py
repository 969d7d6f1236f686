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
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from . import enhance, fusion, multiscale, weight_map
from .config import MIN_SIDE, RUNTIME_FIELDS, FusionConfig
from .errors import FusionInputError
from .registration import match_thermal_size
from .settings import coerce, settings_of
from .temporal import StreamNormaliser

__all__ = [
    "FusionConfig", "FusionResult", "FusionPipeline", "RUNTIME_FIELDS", "prepare_pair", "detector_input_size",
]


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


def detector_input_size(height: int, width: int, scale: float, window: int) -> tuple[tuple[int, int], str | None]:
    """The detector input size for a frame, and the resampling that produces it.

    The frame is scaled by ``scale``, raised so that at least one ``window``×``window`` window fits.

    Returns:
        ((height, width), ``"area"`` when shrinking, ``"linear"`` when enlarging, None when unchanged).
    """
    scale = max(scale, window / min(height, width))
    if abs(scale - 1.0) <= 1e-6:
        return (height, width), None
    size = (max(window, round(height * scale)), max(window, round(width * scale)))
    return size, "area" if scale < 1.0 else "linear"


class FusionPipeline:
    """Fuses registered infrared/visible pairs; one instance per stream (not thread-safe).

    Args:
        config: pipeline settings (``FusionConfig()`` when None).
        detectors: the window-score detectors, ready: one backend (the detector of ``config.mode``),
            a mapping ``{mode: backend}``, or any object whose ``get(mode)`` returns one, creating
            it on demand (``ivif_ros.backends.choice.DetectorLoader``;
            ``ivif_ros.backends.choice.create_pipeline`` builds pipeline and loader in one call).
            A backend is called with float32 (1, 2, H, W) pairs and has ``window``, ``stride``,
            ``device`` and ``describe()``; an optional ``model_info`` (name, path, trained) is
            reported by ``describe()``.
        use_torch: run the default mode with the torch primitives on the detector's device:
            None = when the detector runs on CUDA, True = always (also on CPU), False = never.
            (The tensor path implements the ``two_scale`` scheme of still frames; the ``pyramid``
            scheme and stream mode run on the numpy path.)
        stream: the pairs are consecutive frames of one stream: the normalisation bounds (thermal
            stretch, output stretch) are smoothed over frames (``temporal_smoothing``) and restart on
            a scene cut or size change (``core.temporal``). False: every pair on its own (stills).

    Raises:
        FusionInputError: invalid config or no detector for the configured mode; errors of a
        detector source (``ModelError``, ``BackendError``) surface when a mode's detector is first
        needed (at construction for the configured mode).
    """

    def __init__(
        self,
        config: FusionConfig | None = None,
        detectors: Any = None,
        *,
        use_torch: bool | None = None,
        stream: bool = False,
    ) -> None:
        self.config = config or FusionConfig()
        self.config.validate()
        if detectors is None:
            raise TypeError(
                "FusionPipeline needs its detectors: a backend, {mode: backend} or a DetectorLoader "
                "(ivif_ros.backends.choice.create_pipeline builds one from a DetectorChoice)"
            )
        self._detectors = detectors if hasattr(detectors, "get") else {self.config.mode: detectors}
        self._detector(self.config.mode)
        self._use_torch, self._torch_path = use_torch, None
        self.stream = stream
        self._normaliser = StreamNormaliser(self.config.temporal_smoothing, self.config.scene_cut)

    # ---- configuration -------------------------------------------------------------------
    def check_update(self, **changes: Any) -> FusionConfig:
        """The config that ``update(**changes)`` would install, without installing it.

        Every value is checked (type, array length, NaN/inf, range) and the detector of a new mode
        is loaded, so that the following ``update`` cannot fail.

        Raises:
            FusionInputError: unknown/non-runtime field or invalid value.
            Errors of the detector source (e.g. ``ModelError``): the new mode's detector cannot load.
        """
        unknown = set(changes) - RUNTIME_FIELDS
        if unknown:
            raise FusionInputError(f"not runtime-changeable: {sorted(unknown)}")
        schema = settings_of(FusionConfig)
        values = {name: coerce(name, schema[name], value) for name, value in changes.items()}
        candidate = dataclasses.replace(self.config, **values)
        candidate.validate()
        if candidate.mode != self.config.mode:
            self._detector(candidate.mode)
        return candidate

    def update(self, **changes: Any) -> None:
        """Change runtime-safe config fields atomically (all or nothing; see ``check_update``).

        Raises:
            FusionInputError: unknown/non-runtime field or invalid value; the config is left unchanged.
        """
        self.config = self.check_update(**changes)

    def reset_stream(self) -> None:
        """Forget the stream's smoothed normalisation (e.g. after a seek or a camera restart)."""
        self._normaliser.reset()

    def describe(self) -> dict[str, Any]:
        """Backend, device and model facts of the active mode (for logs and diagnostics)."""
        mode = self.config.mode
        backend = self._detector(mode)
        info = getattr(backend, "model_info", None)
        return {
            "mode": mode,
            **backend.describe(),
            "model": getattr(info, "name", "?"),
            "model_path": str(getattr(info, "path", "") or ""),
            "trained": bool(getattr(info, "trained", False)),
        }

    def _detector(self, mode: str) -> Any:
        backend = self._detectors.get(mode)
        if backend is None:
            raise FusionInputError(f"no detector for mode {mode!r} was given to this pipeline")
        return backend

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
        tensor_path_applies = config.fusion_scheme == "two_scale" and not self.stream
        if config.mode == "default" and tensor_path_applies and self._use_torch is not False:
            if self._torch_path is None:
                backend = self._detector("default")
                if self._use_torch or str(backend.device).startswith("cuda"):
                    from .torch_pipeline import TorchFusionPath

                    self._torch_path = TorchFusionPath(backend)
                else:
                    self._use_torch = False
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
        (det_height, det_width), resampling = detector_input_size(*visible_lum.shape, scale, backend.window)
        if resampling is not None:
            interpolation = cv2.INTER_AREA if resampling == "area" else cv2.INTER_LINEAR
            visible_lum = cv2.resize(visible_lum, (det_width, det_height), interpolation=interpolation)
            thermal_lum = cv2.resize(thermal_lum, (det_width, det_height), interpolation=interpolation)
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
