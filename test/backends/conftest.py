import pytest
import torch

from ivif_ros.models import create_model


def _randomize_batchnorm(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics so eval-mode export is really exercised."""
    gen = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
    return net.eval()


@pytest.fixture
def fast_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return _randomize_batchnorm(create_model("fast"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own ONNX/engine cache root (never ~/.cache)."""
    monkeypatch.setenv("IVIF_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def no_tf32():
    """TF32 off for CUDA parity checks (on by default for cuDNN convolutions), restored afterwards."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
