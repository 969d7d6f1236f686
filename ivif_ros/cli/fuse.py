"""``ivif-fuse``: fuse infrared/visible files or folders offline with the fusion core."""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

__all__ = ["main", "fuse_command"]


def _write_png_atomically(path: Path, image) -> None:
    """Write through a temporary file in the same folder, so no half-written PNG is ever left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        if not cv2.imwrite(temporary, image):
            raise OSError(f"cannot write {path}")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _read_checked(path: str | Path, role: str, max_pixels: int):
    """read_image, after the PNG/JPEG header's size was checked against max_pixels (no decoding bomb)."""
    from ivif_ros.core.errors import FusionInputError
    from ivif_ros.core.image_header import HeaderError, check_dimensions, image_dimensions
    from ivif_ros.core.io import read_image

    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    try:
        image_dimensions(head)
    except HeaderError:
        pass  # another format (or a JPEG header longer than 64 KiB): OpenCV's own limit applies
    else:
        try:
            check_dimensions(head, max_pixels)
        except HeaderError as error:
            raise FusionInputError(f"{Path(path).name}: {error}") from None
    return read_image(path, role)


def _input_folders(*paths: str) -> list[Path]:
    return [Path(p).resolve() for p in paths if Path(p).is_dir()]


def fuse_command(
    ir: str,
    vis: str,
    out: str,
    mode: str = "default",
    backend: str = "auto",
    model: str | None = None,
    device: str = "auto",
    ir_pattern: str | None = None,
    vis_pattern: str | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> int:
    """Fuse every pair found under ``ir``/``vis`` into ``out``/fused and ``out``/weights.

    A pair that cannot be read or fused (unreadable file, an image header over ``max_pixels``,
    any decoder error) is reported in one line and the batch goes on.

    Returns:
        0 when every pair was fused, 1 when some failed (listed on stderr), 2 on a usage error
        (no pairs, ``out`` inside an input folder, outputs that exist without ``overwrite``).
    """
    from tqdm import tqdm

    from ivif_ros.core import FusionConfig, FusionInputError, FusionPipeline
    from ivif_ros.core.io import find_pairs

    try:
        pairs, problems = find_pairs(ir, vis, ir_pattern, vis_pattern)
    except FusionInputError as error:
        print(f"ivif-fuse: {error}", file=sys.stderr)
        return 2
    if not pairs:
        print(f"ivif-fuse: no matching pairs under {ir} and {vis}", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    out_dir = Path(out)
    for folder in _input_folders(ir, vis):
        resolved = out_dir.resolve()
        if resolved.is_relative_to(folder) or folder.is_relative_to(resolved):
            print(f"ivif-fuse: --out {out} overlaps the input folder {folder}; choose an output outside it",
                  file=sys.stderr)
            return 2
    existing = [out_dir / kind / f"{name}.png" for name, _, _ in pairs for kind in ("fused", "weights")]
    existing = [path for path in existing if path.exists()]
    if existing and not overwrite:
        print(f"ivif-fuse: {len(existing)} output file(s) exist already under {out_dir}, e.g. {existing[0]}; "
              "use --overwrite to replace them", file=sys.stderr)
        return 2
    try:
        pipeline = FusionPipeline(FusionConfig(mode=mode), model=model if mode == "default" else None,
                                  seed_model=model if mode == "seed" else None, backend=backend, device=device)
    except Exception as error:  # model/backend errors carry their own message
        print(f"ivif-fuse: cannot set up the pipeline: {error}", file=sys.stderr)
        return 2
    facts = pipeline.describe()
    if not facts["trained"]:
        print("!" * 78 + f"\nivif-fuse: WARNING: the {mode} detector is UNTRAINED; weight maps are not meaningful."
              "\n" + "!" * 78, file=sys.stderr)
    if not quiet:
        print(f"ivif-fuse: {len(pairs)} pair(s), mode={mode}, backend={facts['backend']} on {facts['device']}, "
              f"model={facts['model']} {facts['model_path']}")
    if existing and not quiet:
        print(f"ivif-fuse: replacing {len(existing)} existing output file(s) under {out_dir} (--overwrite)")
    max_pixels = pipeline.config.max_pixels
    failures = list(problems)
    stage_ms: dict[str, list[float]] = {}
    totals: list[float] = []
    for name, ir_path, vis_path in tqdm(pairs, desc="fusing", unit="pair", disable=quiet):
        try:
            ir_image = _read_checked(ir_path, "ir", max_pixels)
            vis_image = _read_checked(vis_path, "vis", max_pixels)
            start = time.perf_counter()
            result = pipeline(ir_image, vis_image)
            totals.append((time.perf_counter() - start) * 1e3)
            _write_png_atomically(out_dir / "fused" / f"{name}.png", result.fused)
            _write_png_atomically(out_dir / "weights" / f"{name}.png", result.weights_u8())
        except (FusionInputError, OSError) as error:
            failures.append(f"{name}: {error}")
            tqdm.write(f"ivif-fuse: skipped {name}: {error}", file=sys.stderr)
            continue
        except Exception as error:  # decoder (cv2.error) or backend failure: one line, go on
            message = " ".join(str(error).split())
            failures.append(f"{name}: {type(error).__name__}: {message}")
            tqdm.write(f"ivif-fuse: skipped {name}: {type(error).__name__}: {message}", file=sys.stderr)
            continue
        for warning in result.warnings:
            tqdm.write(f"ivif-fuse: {name}: warning: {warning}", file=sys.stderr)
        for stage, ms in result.timings.items():
            stage_ms.setdefault(stage, []).append(ms)
    if totals and not quiet:
        summary = ", ".join(f"{stage} {statistics.median(v):.1f}" for stage, v in stage_ms.items())
        print(f"ivif-fuse: {len(totals)} fused into {out_dir}; per pair median {statistics.median(totals):.1f} ms "
              f"(max {max(totals):.1f}); stages ms: {summary}")
    if failures:
        print(f"ivif-fuse: {len(failures)} failure(s):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``ivif-fuse``."""
    parser = argparse.ArgumentParser(prog="ivif-fuse", description=__doc__)
    parser.add_argument("--ir", required=True, help="infrared image file or folder")
    parser.add_argument("--vis", required=True, help="visible image file or folder")
    parser.add_argument("--out", required=True, help="output folder (writes fused/ and weights/)")
    parser.add_argument("--ir-pattern", help="infrared file name pattern with {k}, e.g. IR{k}.png")
    parser.add_argument("--vis-pattern", help="visible file name pattern with {k}, e.g. VIS{k}.png")
    parser.add_argument("--mode", default="default", choices=("default", "seed"))
    parser.add_argument("--backend", default="auto", help="auto, torch, onnxruntime or tensorrt")
    parser.add_argument("--model", help="detector weights (.safetensors); default: the shipped model")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    return fuse_command(args.ir, args.vis, args.out, args.mode, args.backend, args.model, args.device,
                        args.ir_pattern, args.vis_pattern, args.quiet, args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
