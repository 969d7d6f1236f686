import cv2
import numpy as np
import pytest
import torch

from ivif_ros.models import normalize_paths, sobel_features


def _cv_reference(img: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(img.astype(np.float32), cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(img.astype(np.float32), cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return np.stack([img, np.clip(gx, 0, 255), np.clip(gy, 0, 255)]).astype(np.float32) / 255.0


def test_matches_opencv_sobel_replicate_clipped():
    img = np.random.default_rng(0).integers(0, 256, (37, 41), dtype=np.uint8)
    out = sobel_features(torch.from_numpy(img).float().div(255).view(1, 1, 37, 41))
    assert out.shape == (1, 3, 37, 41)
    np.testing.assert_allclose(out[0].numpy(), _cv_reference(img), atol=1e-5)


def test_gradient_directions_follow_imgradientxy():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8) / 255.0  # brighter to the right
    out = sobel_features(ramp.contiguous())
    assert out[0, 1, 4, 4] == pytest.approx(8.0 / 255.0)  # Gx = right - left, weights 1,2,1
    assert out[0, 2].abs().max() == 0.0
    out = sobel_features(ramp.transpose(2, 3).contiguous())  # brighter downwards
    assert out[0, 2, 4, 4] == pytest.approx(8.0 / 255.0) and out[0, 1].abs().max() == 0.0


def test_normalize_paths_uses_seed_constants():
    x = torch.tensor([0.45, 0.05, 0.06]).view(1, 3, 1, 1)
    assert torch.equal(normalize_paths(x), torch.zeros(1, 3, 1, 1))
    assert normalize_paths(x + 0.09)[0, 1:, 0, 0].tolist() == pytest.approx([1.0, 1.0])


def test_counter_sees_the_old_per_call_construction():
    """The counter is not blind: building the constants per call (the old code) is counted."""
    from _constructions import CountConstructions

    with CountConstructions() as counter:
        torch.tensor((0.45, 0.05, 0.06)).view(1, 3, 1, 1)
        torch.full((1,), 2.0)
    assert counter.calls == ["tensor", "full"]


@pytest.mark.parametrize("name,size", [("fast", (72, 64)), ("seed", (40, 48))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_warm_forward_builds_no_tensor_from_python_data(name, size, dtype):
    """After one warm-up call a forward creates no constant tensors (no host→device copies on CUDA)."""
    from _constructions import CountConstructions

    from ivif_ros.models import create_model

    net = create_model(name).eval().to(dtype)
    pair = torch.rand(1, 2, *size, dtype=dtype)
    with torch.inference_mode():
        net(pair)
        with CountConstructions() as counter:
            scores = net(pair)
    assert counter.calls == [] and torch.isfinite(scores).all()


def test_cached_constants_serve_training_after_inference():
    """Constants first built under inference_mode must still be usable by autograd."""
    from ivif_ros.models import create_model

    net = create_model("fast")
    with torch.inference_mode():
        net.eval()(torch.rand(1, 2, 32, 32))
    x = torch.rand(2, 3, 64, 32, requires_grad=True)
    net.train().forward_patches(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available: the sync-debug forward is not run")
@pytest.mark.parametrize("name", ["fast", "seed"])
def test_warm_cuda_forward_never_syncs(name):
    from ivif_ros.models import create_model

    net = create_model(name).eval().cuda()
    pair = torch.rand(1, 2, 64, 64, device="cuda")
    with torch.inference_mode():
        net(pair)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            net(pair)
        finally:
            torch.cuda.set_sync_debug_mode("default")
