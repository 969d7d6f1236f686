"""``ivif-fuse``: fuse infrared/visible files or folders offline with the fusion core."""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

import cv2

from ivif_ros.backends.choice import DetectorChoice, add_detector_arguments, choice_from_arguments
from ivif_ros.cli.options import add_set_argument, config_from_arguments
from ivif_ros.core.config import FusionConfig
from ivif_ros.core.errors import FusionInputError

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
    from ivif_ros.core.image_header import HeaderError, check_dimensions, image_dimensions
    from ivif_ros.data import read_image

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


def _out_problem(out_dir: Path, pairs: list, ir: str, vis: str, overwrite: bool) -> str | None:
    """Why ``out`` must not be written: it overlaps an input folder, or outputs exist (without overwrite)."""
    resolved = out_dir.resolve()
    for folder in (Path(p).resolve() for p in (ir, vis) if Path(p).is_dir()):
        if resolved.is_relative_to(folder) or folder.is_relative_to(resolved):
            return f"--out {out_dir} overlaps the input folder {folder}; choose an output outside it"
    existing = [out_dir / kind / f"{name}.png" for name, _, _ in pairs for kind in ("fused", "weights")]
    existing = [path for path in existing if path.exists()]
    if existing and not overwrite:
        return (f"{len(existing)} output file(s) exist already under {out_dir}, e.g. {existing[0]}; "
                "use --overwrite to replace them")
    return None


def fuse_command(
    ir: str,
    vis: str,
    out: str,
    config: FusionConfig | None = None,
    detector: DetectorChoice | None = None,
    ir_pattern: str | None = None,
    vis_pattern: str | None = None,
    quiet: bool = False,
    batch: int = 1,
    overwrite: bool = False,
    sequence: bool = False,
) -> int:
    """Fuse every pair found under ``ir``/``vis`` into ``out``/fused and ``out``/weights.

    A pair that cannot be read or fused (unreadable file, an image header over ``max_pixels``,
    any decoder error) is reported in one line and the batch goes on.

    Args:
        config: fusion settings (product defaults when None); ``config.mode`` picks the mode.
        detector: detector backend, device and weights (``auto``, shipped weights when None).
        batch: consecutive pairs of one size fused per call (``FusionPipeline.fuse_batch``).
        overwrite: replace existing output files (else they are refused before anything runs).
        sequence: the pairs, in name order, are consecutive frames of one stream; the pipeline
            smooths its normalisation over them (stream mode; batches then run frame by frame).

    Returns:
        0 when every pair was fused, 1 on any failure (listed on stderr), 2 when ``out`` overlaps
        an input folder or outputs exist without ``overwrite``.
    """
    from tqdm import tqdm

    from ivif_ros.backends.choice import create_pipeline
    from ivif_ros.core.batching import fuse_in_batches
    from ivif_ros.data import find_pairs

    config = config or FusionConfig()
    mode = config.mode

    try:
        pairs, problems = find_pairs(ir=ir, vis=vis, ir_pattern=ir_pattern, vis_pattern=vis_pattern)
    except FusionInputError as error:
        print(f"ivif-fuse: {error}", file=sys.stderr)
        return 1
    if not pairs:
        print(f"ivif-fuse: no matching pairs under {ir} and {vis}", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    problem = _out_problem(Path(out), pairs, ir, vis, overwrite)
    if problem:
        print(f"ivif-fuse: {problem}", file=sys.stderr)
        return 2
    try:
        pipeline = create_pipeline(config, detector, uint8_weights=True, stream=sequence)  # only weights_u8 is written
    except Exception as error:  # model/backend errors carry their own message
        print(f"ivif-fuse: cannot set up the pipeline: {error}", file=sys.stderr)
        return 1
    facts = pipeline.describe()
    if not facts["trained"]:
        print("!" * 78 + f"\nivif-fuse: WARNING: the {mode} detector is UNTRAINED; weight maps are not meaningful."
              "\n" + "!" * 78, file=sys.stderr)
    if not quiet:
        print(f"ivif-fuse: {len(pairs)} pair(s), mode={mode}, backend={facts['backend']} on {facts['device']}, "
              f"model={facts['model']} {facts['model_path']}")
    out_dir = Path(out)
    failures = list(problems)
    stage_ms: dict[str, list[float]] = {}
    totals: list[float] = []

    def load(pair):
        return _read_checked(pair[1], "ir", config.max_pixels), _read_checked(pair[2], "vis", config.max_pixels)

    outcomes = fuse_in_batches(pipeline, pairs, load, max(1, batch))
    for (name, _, _), result in tqdm(outcomes, total=len(pairs), desc="fusing", unit="pair", disable=quiet):
        try:
            if isinstance(result, Exception):
                raise result
            totals.append(sum(result.timings.values()))
            _write_png_atomically(out_dir / "fused" / f"{name}.png", result.fused)
            _write_png_atomically(out_dir / "weights" / f"{name}.png", result.weights_u8())
        except (FusionInputError, OSError) as error:
            failures.append(f"{name}: {error}")
            tqdm.write(f"ivif-fuse: skipped {name}: {error}", file=sys.stderr)
            continue
        except Exception as error:  # decoder (cv2.error) or backend failure: one line, go on
            message = f"{type(error).__name__}: {' '.join(str(error).split())}"
            failures.append(f"{name}: {message}")
            tqdm.write(f"ivif-fuse: skipped {name}: {message}", file=sys.stderr)
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
    parser.add_argument("--mode", default=None, choices=("default", "seed"), help="fusion mode (default: default)")
    add_detector_arguments(parser, "detector weights of the mode (.safetensors); default: the shipped model")
    add_set_argument(parser)
    parser.add_argument("--batch", type=int, default=1, help="pairs of one size fused per call (offline batched path)")
    parser.add_argument("--sequence", action="store_true",
                        help="the pairs (in name order) are frames of one video: smooth the normalisation over time")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        config = config_from_arguments(args)
        detector = choice_from_arguments(args, config.mode)
    except FusionInputError as error:
        print(f"ivif-fuse: {error}", file=sys.stderr)
        return 2
    return fuse_command(args.ir, args.vis, args.out, config, detector, args.ir_pattern, args.vis_pattern, args.quiet,
                        args.batch, args.overwrite, args.sequence)


if __name__ == "__main__":
    sys.exit(main())
