"""The primitives every fusion mode is written with, in two implementations picked by device.

A fusion mode (``core.default_mode``, and the stages in ``enhance``, ``guided_filter``,
``weight_map``, ``fusion``) is written once as calls on an ``ops`` object:

* ``NUMPY_OPS`` (``numpy_ops.NumpyOps``): numpy arrays and OpenCV on the host, one H×W float32 image
  per call, per-image scalars as Python floats — the CPU path, bit-identical to the original code;
* ``TorchOps(device)`` (``torch_ops.TorchOps``): torch tensors (B, 1, H, W) on one device, per-image
  scalars as (B, 1, 1, 1) tensors, no host synchronisation inside a frame — the CUDA path.

The set: frames in/out (``upload``, ``download``, ``synchronize``, ``finish``, ``clock``), per-image
scalars (``scalar``, ``choose``, ``scalar_max``/``scalar_min``, ``minmax``, ``mean``,
``percentiles``, ``histogram_percentiles``), pixel-wise (``clip``, ``clip_min``, ``maximum``,
``abs``, ``log``, ``exp``, ``sigmoid``, ``to_uint8``), neighbourhoods (``box_mean``,
``gaussian_blur``, ``resize``, ``accumulate_windows``), the detector call (``detect``) and colour
(``luma``, ``merge_luma``). Arithmetic (``+ - * /``) is written directly. To add a primitive, add
a method with the same name and meaning to both classes and a parity test in
``test/core/test_primitives.py``.
"""
from __future__ import annotations

from typing import Any

from .numpy_ops import NUMPY_OPS, NumpyOps

__all__ = ["NUMPY_OPS", "NumpyOps", "ops_for"]

_TORCH_OPS: dict[str, Any] = {}


def ops_for(device: str | None) -> Any:
    """``NUMPY_OPS`` for None, else the (cached) ``TorchOps`` of ``device`` (``"cpu"``, ``"cuda:0"``...)."""
    if device is None:
        return NUMPY_OPS
    ops = _TORCH_OPS.get(str(device))
    if ops is None:
        from .torch_ops import TorchOps

        ops = _TORCH_OPS[str(device)] = TorchOps(device)
    return ops
