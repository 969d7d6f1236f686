"""Export a trained detector: pickle-free safetensors and ONNX with dynamic height/width.

The ONNX graph is the dense ``forward``: input ``pair`` float32 (N, 2, H, W) in 0..1 (channel 0 =
visible, 1 = infrared), output ``scores`` float32 (N, 1, rows, cols), the same numbers the torch
module returns, Sobel and normalisation included.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ivif_ros.backends.onnx_backend import INPUT_NAME, OUTPUT_NAME
from ivif_ros.backends.onnx_backend import export_onnx as export_dense_onnx
from ivif_ros.cli.dependencies import require
from ivif_ros.models import ModelError, load_model, save_model

__all__ = ["export_onnx", "onnx_parity", "main"]

#: Sizes (H, W) checked by ``--check``: one typical, one odd-sized.
CHECK_SIZES = ((256, 320), (97, 131))


def export_onnx(net: nn.Module, path: str | Path, arch: str, opset: int = 17) -> Path:
    """Write ``net.forward`` as ONNX with dynamic batch, height and width.

    Args:
        net: a detector in eval mode (``fast`` or ``seed``).
        path: output ``.onnx`` file.
        arch: architecture name, stored with stride and window in the model's metadata.
        opset: ONNX opset (>= 17).

    Returns:
        The written path.

    Raises:
        ValueError: ``opset`` below 17.
    """
    import onnx

    if opset < 17:
        raise ValueError(f"opset={opset}: need 17 or newer")
    export_dense_onnx(net, path, opset=opset, example_size=(96, 128))
    model = onnx.load(str(path))
    for key, value in {"arch": arch, "stride": str(net.stride), "window": str(net.window)}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def onnx_parity(net: nn.Module, path: str | Path, sizes: tuple[tuple[int, int], ...] = CHECK_SIZES,
                seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime and torch scores over ``sizes``.

    Raises:
        ValueError: the ONNX output shape differs from torch's.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for h, w in sizes:
        pair = rng.random((1, 2, h, w), dtype=np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(pair)).numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: pair})[0]
        if got.shape != ref.shape:
            raise ValueError(f"{path}: ONNX output {got.shape} != torch {ref.shape} at {h}x{w}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivif-export", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("weights",
                   help="trained weights: .safetensors (e.g. runs/<name>/model.safetensors) or weights-only .pt")
    p.add_argument("--out", default="export", help="output folder")
    p.add_argument("--name", help="output file stem (default: the architecture)")
    p.add_argument("--half", action="store_true", help="store the safetensors weights as float16")
    p.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=True, help="also write <name>.onnx")
    p.add_argument("--stride", type=int, help="dense stride baked into the ONNX graph (default: the model's)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--check", action="store_true", help="compare onnxruntime with torch at two sizes")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest accepted |onnx - torch| score difference")
    return p


def main(argv: list[str] | None = None) -> int:
    """``ivif-export``: write safetensors (+ ONNX) for a trained detector. Returns the exit status."""
    args = _parser().parse_args(argv)
    if args.onnx:
        require("ivif-export", "the ONNX export (--no-onnx skips it)", ("onnx",))
    try:
        net, info = load_model(args.weights, **({"stride": args.stride} if args.stride else {}))
        from safetensors import safe_open

        meta: dict[str, str] = {}
        if Path(args.weights).suffix == ".safetensors":
            with safe_open(args.weights, framework="pt") as fh:
                meta = dict(fh.metadata() or {})
        meta = {k: v for k, v in meta.items() if k not in ("arch", "model_kwargs")}
        meta.update(source_sha256=info.sha256, source_file=Path(args.weights).name)
        stem = args.name or info.arch
        out = Path(args.out)
        written = [save_model(net, out / f"{stem}.safetensors", info.arch, meta, half=args.half)]
        if args.onnx:
            written.append(export_onnx(net, out / f"{stem}.onnx", info.arch, opset=args.opset))
            if args.check:
                err = onnx_parity(net, written[-1])
                print(json.dumps({"onnx_max_abs_diff": err, "sizes": CHECK_SIZES}))
                if err > args.tolerance:
                    print(f"ivif-export: error: onnxruntime differs from torch by {err:.3g} > {args.tolerance}",
                          file=sys.stderr)
                    return 1
    except (ModelError, ValueError, OSError) as exc:
        print(f"ivif-export: error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
