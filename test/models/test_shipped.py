import hashlib
import json

import cv2
import numpy as np
import pytest
import torch

from ivif_ros.models import WEIGHTS_DIR, load_model, shipped_weights

pytestmark = pytest.mark.skipif(shipped_weights("fast") is None, reason="no shipped fast weights")


def _photo_like(h: int = 128, w: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.uniform(30, 220, (8, 10)), (w, h), interpolation=cv2.INTER_NEAREST)
    return np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)


def test_recipe_describes_the_shipped_file():
    recipe = json.loads((WEIGHTS_DIR / "fast.json").read_text())
    data = (WEIGHTS_DIR / recipe["weights"]).read_bytes()
    assert recipe["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert recipe["held_out"]["test_acc_min_contrast_2"] >= 0.95
    assert (WEIGHTS_DIR / "RECIPE.md").is_file()


def test_default_detector_prefers_the_sharp_image():
    net, info = load_model(None)
    assert info.trained and info.arch == "fast"
    sharp = _photo_like()
    blurred = cv2.GaussianBlur(sharp, (9, 9), 3)
    pair = torch.from_numpy(np.stack([sharp, blurred])[None].astype(np.float32) / 255.0)
    with torch.no_grad():
        score = net(pair)
        swapped = net(pair.flip(1))
    assert (score > 0).float().mean() > 0.95
    torch.testing.assert_close(swapped, -score)


def test_default_detector_sees_local_blur():
    """Left half blurred in A, right half blurred in B: the score changes sign across the middle."""
    net, _ = load_model(None, stride=4)
    img = _photo_like(96, 192, seed=1)
    blurred = cv2.GaussianBlur(img, (9, 9), 3)
    a, b = img.copy(), img.copy()
    a[:, :96], b[:, 96:] = blurred[:, :96], blurred[:, 96:]
    pair = torch.from_numpy(np.stack([a, b])[None].astype(np.float32) / 255.0)
    with torch.no_grad():
        score = net(pair)[0, 0].numpy()
    assert (score[:, :10] < 0).mean() > 0.9 and (score[:, -10:] > 0).mean() > 0.9


@pytest.mark.skipif(shipped_weights("seed") is None, reason="no shipped seed weights")
def test_seed_recipe_describes_the_shipped_file():
    recipe = json.loads((WEIGHTS_DIR / "seed.json").read_text())
    data = (WEIGHTS_DIR / recipe["weights"]).read_bytes()
    assert recipe["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert recipe["arch"] == "seed" and recipe["dataset_recipe"] == "paper"
    assert recipe["held_out"]["test_acc"] >= 0.95


@pytest.mark.skipif(shipped_weights("seed") is None, reason="no shipped seed weights")
def test_seed_detector_votes_for_the_sharp_image():
    """The authors' vote: +1 (A) where A is the sharp image, -1 once the inputs are swapped."""
    net, info = load_model("seed", stride=16, votes=True)
    assert info.trained and info.arch == "seed"
    sharp = _photo_like(96, 128, seed=2)
    blurred = cv2.GaussianBlur(sharp, (9, 9), 3)
    pair = torch.from_numpy(np.stack([sharp, blurred])[None].astype(np.float32) / 255.0)
    with torch.no_grad():
        votes = net(pair)
        swapped = net(pair.flip(1))
    assert (votes > 0).float().mean() > 0.9 and (swapped < 0).float().mean() > 0.9
