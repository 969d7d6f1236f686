"""Shared fixtures of the bag tests: synthetic paired image folders and bags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ivif_ros.bag import MakeOptions, find_image_pairs, make_bag

from _bagdata import START_NS, write_pairs


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[np.ndarray, np.ndarray]]]:
    """A folder with ir/ + vis/ holding 8 synthetic pairs, and the arrays."""
    root = tmp_path_factory.mktemp("dataset")
    return root, write_pairs(root, 8)


@pytest.fixture(scope="session")
def small_bag(dataset: tuple[Path, list], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mcap bag of the 8 dataset pairs at 10 Hz, thermal 5 ms after RGB, with camera info."""
    path = tmp_path_factory.mktemp("bags") / "small"
    pairs, _ = find_image_pairs(dataset[0])
    make_bag(pairs, path, MakeOptions(start_ns=START_NS, offset_ms=5.0, camera_info=True))
    return path
