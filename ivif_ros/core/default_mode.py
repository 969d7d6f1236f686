"""The product's default fusion mode, written once over the primitives (numpy/OpenCV or torch).

thermal stretch → optional §3 enhancement of either source → detector on the pair at
``detector_scale`` → soft window weights (visible share), upsampled → then, by ``fusion_scheme``:

* ``pyramid`` (the default, ``core.multiscale``): Laplacian pyramids of both luminances, a
  Gaussian pyramid of the weights (mixed with local detail energy when ``detector_mix`` < 1), per
  band Burt's match/salience rule with the detector's weights where the bands match, the residual
  by soft brightness selection;
* ``two_scale`` (the earlier default): weights refined edge-aware by a guided filter and mixed
  (``detector_mix``) with local detail-energy weights; base layers by soft brightness selection
  (+ ``base_complement`` of the darker base), detail layers by the weight map;

→ percentile output stretch. In stream mode (``stream`` given: ``core.temporal.StreamNormaliser``)
the thermal stretch becomes a tone curve anchored to the stream's smoothed quantiles, and the output
stretch is smoothed and followed by such a curve whose tone range stays within the inputs'. The caller
(``FusionPipeline``) converts colour and moves frames.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from . import enhance, fusion, multiscale, weight_map
from .config import FusionConfig
from .temporal import QUANTILE_SAMPLES, RANGE_PERCENTILES, TONE_PERCENTILES

__all__ = ["fuse_default"]

#: ``detect(visible_lum, thermal_lum, scale) -> (scores, detector input (h, w), window, stride)``.
Detect = Callable[[Any, Any, float], tuple[Any, tuple[int, int], int, int]]


class StreamTone(Protocol):
    """A stream's normalisation state (``core.temporal.StreamNormaliser``)."""

    def thermal_curve(self, knots: Sequence[Any], low: Any, high: Any) -> tuple[Any, Any]:
        """(raw knots, 0..255 values) of this frame's thermal tone curve."""

    def output_tone(
        self, clip_quantiles: Sequence[Any], knots: Sequence[Any], visible: Sequence[Any]
    ) -> tuple[tuple[float, float], Any, Any]:
        """This frame's output stretch bounds and (0..255 knots, values) of the tone curve after it."""


def fuse_default(
    ops: Any, thermal: Any, visible_lum: Any, config: FusionConfig, detect: Detect, clock: Any,
    stream: StreamTone | None = None,
) -> tuple[Any, Any]:
    """Fused luminance (float32 0..255) and weight map (visible share 0..1) of one frame.

    Args:
        ops: the primitives (``NUMPY_OPS`` or a ``TorchOps``), matching the arrays given.
        thermal: thermal frame in its own dtype, at the visible frame's size.
        visible_lum: float32 visible luminance 0..255.
        config: the settings.
        detect: runs the detector (see ``Detect``).
        clock: stage clock of ``ops`` (laps ``enhance``, ``detect``, ``weights``, ``fuse``).
        stream: the stream's normalisation state; None = a still (per-frame stretches).
    """
    bounds = enhance.thermal_bounds(thermal, config.thermal_stretch, config.thermal_percentiles, ops)
    if stream is None:
        thermal_lum = enhance.apply_bounds(thermal, *bounds, ops=ops)
    else:
        thermal_lum = ops.tone_map(thermal, *stream.thermal_curve(_thermal_quantiles(ops, thermal), *bounds))
    if config.thermal_enhance > 0:
        thermal_lum = _partly_enhanced(ops, thermal_lum, config.thermal_enhance, config)
    if config.visible_enhance > 0:
        visible_lum = _partly_enhanced(ops, visible_lum, config.visible_enhance, config)
    clock.lap("enhance")
    analysis = None
    if config.fusion_scheme == "pyramid" and ops.overlap_detection:
        # The detector runs in its own thread while this one does the pyramid work that needs no
        # weights: both sources' pyramids and their bands' match and energies (the "detect" lap then
        # includes it).
        pending = _detection_thread().submit(detect, visible_lum, thermal_lum, config.detector_scale)
        soft = multiscale.soft_selection(config.selection_sharpness, config.selection_bias)
        analysis = multiscale.analyse_bands(visible_lum, thermal_lum, config.pyramid_levels, config.match_radius, soft,
                                            ops)
        scores, det_shape, window, stride = pending.result()
    else:
        scores, det_shape, window, stride = detect(visible_lum, thermal_lum, config.detector_scale)
    clock.lap("detect")
    weights = weight_map.soft_weight_map(scores, window, stride, det_shape, config.weight_temperature, ops=ops)
    weights = ops.resize(weights, tuple(visible_lum.shape[-2:]), "linear")
    if config.fusion_scheme == "pyramid":  # weights out: the effective visible share over the levels
        if config.detector_mix < 1.0:
            details = [fusion.split_base_detail(lum, config.base_radius, ops=ops)[1]
                       for lum in (visible_lum, thermal_lum)]
            energy = fusion.detail_energy_weights(*details, config.detail_sigma, ops=ops)
            weights = fusion.blend(weights, energy, ops.scalar(config.detector_mix))
        clock.lap("weights")
        fused, weights = multiscale.pyramid_fuse(
            visible_lum, thermal_lum, weights, config.pyramid_levels, config.match_threshold, config.match_radius,
            config.selection_sharpness, config.base_temperature, config.base_complement, config.detail_gain,
            config.selection_bias, config.base_bias, analysis=analysis, ops=ops,
        )
    else:
        weights, fused = _two_scale(ops, visible_lum, thermal_lum, weights, config, clock)
    clip = config.output_stretch
    if stream is None or clip <= 0:
        fused = fusion.apply_stretch(fused, fusion.stretch_bounds(fused, clip, ops), ops)
    else:  # the curve maps the 8-bit stretched output through one table lookup
        quantiles = ops.percentiles(fused, (clip, 100.0 - clip, *TONE_PERCENTILES), 2, QUANTILE_SAMPLES)
        output_bounds, knots, values = stream.output_tone(
            quantiles[:2], quantiles[2:], ops.percentiles(visible_lum, RANGE_PERCENTILES, 4, QUANTILE_SAMPLES))
        fused = ops.tone_map(ops.to_uint8(fusion.apply_stretch(fused, output_bounds, ops)), knots, values)
    clock.lap("fuse")
    return fused, weights


_DETECTION_THREADS: dict[int, ThreadPoolExecutor] = {}  # process id -> its detector thread


def _detection_thread() -> ThreadPoolExecutor:
    """This process's one detector thread, created on first use. Keyed by process id: a forked child
    (e.g. a multiprocessing worker) inherits the parent's executor but not its thread, so it gets its own."""
    pid = os.getpid()
    executor = _DETECTION_THREADS.get(pid)
    if executor is None:
        _DETECTION_THREADS.clear()  # a parent's executor is unusable here (its thread did not fork)
        executor = _DETECTION_THREADS[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivif_detect")
    return executor


def _thermal_quantiles(ops: Any, thermal: Any) -> list[Any]:
    """The raw thermal frame's quantiles at ``TONE_PERCENTILES`` (from the histogram of integer data)."""
    if ops.integer_levels(thermal) is not None:
        return ops.histogram_percentiles(thermal, TONE_PERCENTILES)
    return ops.percentiles(thermal, TONE_PERCENTILES, 4, QUANTILE_SAMPLES)


def _two_scale(
    ops: Any, visible_lum: Any, thermal_lum: Any, weights: Any, config: FusionConfig, clock: Any
) -> tuple[Any, Any]:
    """The earlier default's weights and fused (unstretched) luminance."""
    guide = ops.maximum(visible_lum, thermal_lum)
    weights = weight_map.refine_weights(weights, guide, config.smoothing_radius, config.smoothing_eps, ops=ops)
    visible_layers = fusion.split_base_detail(visible_lum, config.base_radius, ops=ops)
    thermal_layers = fusion.split_base_detail(thermal_lum, config.base_radius, ops=ops)
    if config.detector_mix < 1.0:
        energy = fusion.detail_energy_weights(visible_layers[1], thermal_layers[1], config.detail_sigma, ops=ops)
        weights = fusion.blend(weights, energy, ops.scalar(config.detector_mix))
    clock.lap("weights")
    fused = fusion.saliency_detail_fuse(
        visible_layers, thermal_layers, weights, config.base_temperature, config.base_complement, config.detail_gain,
        ops=ops,
    )
    return weights, fused


def _partly_enhanced(ops: Any, luminance: Any, share: float, config: FusionConfig) -> Any:
    """``share`` of the §3 enhanced luminance mixed with the original."""
    enhanced = enhance.enhance_luminance(
        luminance, target_contrast=config.target_contrast, detail_gain=config.enhance_detail_gain, ops=ops
    )
    return fusion.blend(enhanced, luminance, ops.scalar(share))
