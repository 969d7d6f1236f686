"""The fusion pipeline: prepare → enhance → detect → weights → fuse, one implementation for all.

The CLI, the ROS node, the bag tools, the evaluation and the benchmarks call ``FusionPipeline``.

Modes:
    ``default`` — the product: robust thermal stretch, partial visible enhancement, a fast
    fully-convolutional detector at reduced resolution, soft weights refined edge-aware by a guided
    filter, base/detail fusion.
    ``seed`` — SEED-ALGORITHM.md reproduced faithfully at native resolution: full §3 enhancement,
    the three-path detector over 32×32 windows at stride 8 (4 from 500 px), vote map → decision map
    → distance-transform blending → min–max → Single-Scale Retinex (``seed_mode``: as the authors'
    ``Model_Test.py`` does each step).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ivif_ros import data as image_files  # a module import: ivif_ros.data imports .errors

from . import enhance, fusion, seed_mode, weight_map
from .config import MIN_SIDE, RUNTIME_FIELDS, FusionConfig
from .default_mode import fuse_default
from .errors import FusionInputError
from .heap import retain_freed_memory
from .primitives import NUMPY_OPS, ops_for
from .registration import match_thermal_size
from .settings import coerce, settings_of
from .temporal import THUMBNAIL_SIZE, StreamNormaliser

__all__ = [
    "FusionConfig", "FusionResult", "FusionPipeline", "RUNTIME_FIELDS", "prepare_pair", "detector_input_size",
]


@dataclass
class FusionResult:
    """Outputs of one fused pair.

    Attributes:
        fused: uint8 H×W (gray visible) or H×W×3 BGR (colour visible), the visible frame's size.
        weights: float32 H×W visible share in [0, 1]; uint8 0..255 (``weights_u8``) when the
            pipeline was made with ``uint8_weights=True``.
        timings: milliseconds per stage (prepare, enhance, detect, weights, fuse); for a pair of a
            batch, its share (the batch's time / B).
        warnings: non-fatal notes about the inputs (e.g. the IR was resized).
    """

    fused: np.ndarray
    weights: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def weights_u8(self) -> np.ndarray:
        """uint8 view of the weight map (255 = all visible)."""
        if self.weights.dtype == np.uint8:
            return self.weights
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
    thermal = image_files.to_single_channel(ir, convert_colour=ir.dtype == np.uint8)
    if thermal.ndim == 3:
        raise FusionInputError(f"infrared image is {ir.shape[2]}-channel {ir.dtype}; give one channel")
    return thermal


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
            A backend is called with float32 (N, 2, H, W) pairs (N = B on the batched path) and has
            ``window``, ``stride``, ``device`` and ``describe()``; an optional ``model_info`` (name, path, trained) is
            reported by ``describe()``.
        use_torch: run the default mode with the torch primitives on the detector's device:
            None = when the detector runs on CUDA, True = always (also on CPU), False = never.
        uint8_weights: return the weight map as uint8 0..255 (as ``FusionResult.weights_u8``) for
            callers that need no more: a quarter of the download and host copy.
        stream: the pairs are consecutive frames of one stream: the default mode's normalisation
            bounds (thermal stretch, output stretch) are smoothed over frames (``temporal_smoothing``)
            and restart on a scene cut or size change (``core.temporal``); batches are then fused
            frame by frame, in order. False: every pair on its own (stills).

    Attributes:
        heap_reuse: whether freed frame-sized memory stays in the process for the next frame
            (``core.heap.retain_freed_memory``, set for the process on construction; glibc only).

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
        uint8_weights: bool = False,
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
        self._use_torch = use_torch
        self._uint8_weights = bool(uint8_weights)
        self.stream = stream
        self._normaliser = StreamNormaliser(self.config.temporal_smoothing, self.config.scene_cut)
        self.heap_reuse = retain_freed_memory()

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
            "heap_reuse": self.heap_reuse,
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
        ops = self._ops(config.mode)
        with ops.frame_context():
            clock = ops.clock()
            thermal_host, visible_host, warnings = prepare_pair(ir, vis, config)
            thermal = ops.upload(thermal_host, "ir")
            visible_lum, colour = ops.luma(ops.upload(visible_host, "vis"))
            clock.lap("prepare")

            def detect(visible: Any, thermal: Any, scale: float) -> tuple[Any, tuple[int, int], int, int]:
                return self._detect(ops, config.mode, visible, thermal, scale)

            if config.mode == "seed":
                fused_lum, weights = self._fuse_seed(thermal, visible_lum, config, detect, clock)
            else:
                stream = self._stream_state(ops, visible_lum)
                fused_lum, weights = fuse_default(ops, thermal, visible_lum, config, detect, clock, stream)
            fused = ops.download(ops.merge_luma(colour, fused_lum), "fused")
            weights = ops.download(self._weights_out(ops, weights), "weights")
            clock.lap("fuse")
            ops.synchronize()
            return FusionResult(ops.finish(fused), ops.finish(weights), clock.result(), warnings)

    def _stream_state(self, ops: Any, visible_lum: Any) -> StreamNormaliser | None:
        """Stills (or ``temporal_smoothing`` 0: per frame): None. Stream: the normaliser, with this frame
        registered (scene cut, size)."""
        if not self.stream or self.config.temporal_smoothing <= 0:
            return None
        normaliser = self._normaliser
        normaliser.smoothing, normaliser.scene_cut = self.config.temporal_smoothing, self.config.scene_cut
        thumbnail = ops.resize(visible_lum, THUMBNAIL_SIZE, "area")
        if not isinstance(thumbnail, np.ndarray):  # a device tensor: one 32×24 copy to the host per frame
            thumbnail = thumbnail.detach().float().cpu().numpy().reshape(THUMBNAIL_SIZE)
        normaliser.begin_frame(thumbnail, tuple(visible_lum.shape[-2:]))
        return normaliser

    def _weights_out(self, ops: Any, weights: Any) -> Any:
        return ops.to_uint8(weights * 255.0) if self._uint8_weights else weights

    # ---- batches (offline work) --------------------------------------------------------------
    def fuse_batch(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[FusionResult]:
        """Fuse B pairs of one size and type in one pass; results equal B single calls.

        On the torch primitives (default mode) the B frames travel as one (B, ...) tensor: one
        upload and one download per input/output, per-frame reductions (percentiles, min/max,
        means), one detector call (chunked to the backend's ``max_batch``). Elsewhere (numpy path,
        seed mode) it is B single calls.

        Raises:
            FusionInputError: an invalid pair, or pairs that differ in shape or dtype.
        """
        return next(self.fuse_batches([pairs]))

    def fuse_batches(self, batches: Iterable[Sequence[tuple[np.ndarray, np.ndarray]]]) -> Iterator[list[FusionResult]]:
        """``fuse_batch`` over many batches, double-buffered on CUDA.

        While the device works on one batch, the host prepares and uploads the next (its pinned
        buffers alternate between two slots); a batch's results are read only after its own work
        is done. Yields one list per batch, in order; a batch that cannot start (e.g. pairs of
        different sizes) raises ``FusionInputError`` after the batch before it was yielded.
        """
        config = self.config
        ops = self._ops(config.mode)
        if ops is NUMPY_OPS or config.mode != "default" or self.stream:
            for pairs in batches:
                yield [self(ir, vis) for ir, vis in pairs]
            return
        in_flight = None
        for slot, pairs in enumerate(batches):
            try:
                launched = self._launch_batch(ops, config, pairs, slot % 2)
            except Exception:  # the batch before it is done: hand it out, then raise
                if in_flight is not None:
                    yield self._collect_batch(ops, *in_flight)
                raise
            if in_flight is not None:
                yield self._collect_batch(ops, *in_flight)
            in_flight = launched
        if in_flight is not None:
            yield self._collect_batch(ops, *in_flight)

    def _launch_batch(self, ops: Any, config: FusionConfig, pairs: Sequence[tuple[np.ndarray, np.ndarray]], slot: int):
        prepared = [prepare_pair(ir, vis, config) for ir, vis in pairs]
        if not prepared:
            raise FusionInputError("fuse_batch needs at least one pair")
        signature = {(t.shape, t.dtype.str, v.shape, v.dtype.str) for t, v, _ in prepared}
        if len(signature) > 1:
            raise FusionInputError(f"fuse_batch needs pairs of one size and type, got {sorted(signature)}")
        with ops.frame_context():
            clock = ops.clock()
            thermal = ops.upload_batch([t for t, _, _ in prepared], f"ir{slot}")
            visible_lum, colour = ops.luma(ops.upload_batch([v for _, v, _ in prepared], f"vis{slot}"))
            clock.lap("prepare")

            def detect(visible: Any, thermal: Any, scale: float) -> tuple[Any, tuple[int, int], int, int]:
                return self._detect(ops, config.mode, visible, thermal, scale)

            fused_lum, weights = fuse_default(ops, thermal, visible_lum, config, detect, clock)
            fused = ops.download_batch(ops.merge_luma(colour, fused_lum), f"fused{slot}")
            weights = ops.download_batch(self._weights_out(ops, weights), f"weights{slot}")
            clock.lap("fuse")
            return fused, weights, clock, ops.mark(), [w for _, _, w in prepared]

    def _collect_batch(
        self, ops: Any, fused: Any, weights: Any, clock: Any, mark: Any, warnings: list
    ) -> list[FusionResult]:
        ops.wait(mark)
        fused_np, weights_np = ops.finish(fused), ops.finish(weights)
        share = {stage: ms / len(warnings) for stage, ms in clock.result().items()}
        return [FusionResult(fused_np[i], weights_np[i], dict(share), warnings[i]) for i in range(len(warnings))]

    def _ops(self, mode: str) -> Any:
        """The primitives of ``mode``: torch on the detector's device where ``use_torch`` says so."""
        if mode != "default" or self._use_torch is False:
            return NUMPY_OPS
        device = str(getattr(self._detector("default"), "device", "cpu"))
        if self._use_torch or device.startswith("cuda"):
            return ops_for(device)
        return NUMPY_OPS

    def _detect(self, ops: Any, mode: str, visible_lum: Any, thermal_lum: Any, scale: float):
        """Window scores for the pair at ``scale`` (at least one window), the detector input size, window, stride."""
        backend = self._detector(mode)
        size, resampling = detector_input_size(*visible_lum.shape[-2:], scale, backend.window)
        if resampling is not None:
            visible_lum = ops.resize(visible_lum, size, resampling)
            thermal_lum = ops.resize(thermal_lum, size, resampling)
        return ops.detect(backend, visible_lum, thermal_lum), size, backend.window, backend.stride

    def _fuse_seed(self, thermal, visible_lum, config, detect, clock):
        thermal_lum = enhance.minmax_to_255(thermal)
        visible_lum = enhance.enhance_luminance(visible_lum)
        clock.lap("enhance")
        height, width = visible_lum.shape
        backend = self._detector("seed")
        stride = config.seed_stride or (4 if max(height, width) >= 500 else 8)
        if getattr(backend, "set_stride", None) is not None:
            backend.set_stride(stride)
        authors = config.seed_blend == "authors"
        detect_ir = seed_mode.original_infrared(thermal) if authors else thermal_lum
        scores, det_shape, window, stride = detect(visible_lum, detect_ir, 1.0)
        clock.lap("detect")
        if authors:
            fused, weights = seed_mode.fuse(visible_lum, thermal_lum, scores, window, stride, config.seed_retinex,
                                            config.retinex_sigma)
            clock.lap("fuse")
            return fused, weights
        weights = weight_map.seed_weight_map(scores, window, stride, det_shape, config.seed_blend_radius)
        if weights.shape != (height, width):
            weights = cv2.resize(weights, (width, height), interpolation=cv2.INTER_LINEAR)
        clock.lap("weights")
        fused = enhance.minmax_to_255(fusion.blend(visible_lum, thermal_lum, weights))
        if config.seed_retinex:
            fused = fusion.single_scale_retinex(fused, config.retinex_sigma)
        clock.lap("fuse")
        return fused, weights
