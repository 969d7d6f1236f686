"""Time the seed detector's dense pass on one 456×456 pair, ``exact`` vs ``shared`` (``python -m``).

``exact`` runs every 32×32 window (both stacking orders) through the whole network; ``shared`` runs
the layers before ``fc`` once per image. The exact pass over all 2,916 windows takes tens of minutes
on a loaded CPU, so ``--strip W`` times it on the leftmost W columns and scales by the window count
(the cost is linear in it); the vote agreement is measured on that strip. Prints and writes JSON.

    python -m ivif_ros.training.seed_dense_timing IR.png VIS.png --strip 64 --out timing.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ivif_ros.core import enhance
from ivif_ros.models import load_model
from ivif_ros.training.paper_protocol import PAPER_SIZE, read_gray_456


def time_dense(infrared: Path, visible: Path, weights: str | None, strip: int, threads: int) -> dict[str, float]:
    """Seconds of the shared full pass and of the exact pass (measured on a strip, scaled), and vote agreement."""
    torch.set_num_threads(threads)
    square = (PAPER_SIZE, PAPER_SIZE)
    ir = read_gray_456(infrared)
    vis = enhance.enhance_luminance(read_gray_456(visible, None).astype(np.float32))  # enhanced at native size
    vis_enh = np.floor(cv2.resize(vis, square) + 0.5)
    pair = torch.from_numpy(np.stack([vis_enh, ir.astype(np.float32)])[None].astype(np.float32) / 255.0)
    net, info = load_model(weights or "seed", stride=8, votes=True)
    result: dict[str, float] = {"size": PAPER_SIZE, "threads": threads, "weights_sha256": info.sha256 or ""}
    with torch.no_grad():
        net.dense = "shared"
        start = time.perf_counter()
        shared = net(pair)
        result["shared_s"] = time.perf_counter() - start
        windows = shared.numel()
        part = pair[:, :, :, :strip]
        net.dense = "exact"
        start = time.perf_counter()
        exact_part = net(part)
        seconds = time.perf_counter() - start
        net.dense = "shared"
        shared_part = net(part)
    result.update(windows=windows, strip_windows=exact_part.numel(), exact_strip_s=seconds,
                  exact_full_s_estimated=seconds * windows / exact_part.numel(),
                  vote_agreement_on_strip=float((shared_part == exact_part).float().mean()),
                  visible_vote_share_exact=float((exact_part > 0).float().mean()))
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("infrared")
    parser.add_argument("visible")
    parser.add_argument("--weights", default=None, help="seed weights (default: shipped)")
    parser.add_argument("--strip", type=int, default=64, help="columns of the exact-pass sample (>= 32)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.strip < 32:
        parser.error("--strip must be >= 32")
    result = time_dense(Path(args.infrared), Path(args.visible), args.weights, args.strip, args.threads)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
