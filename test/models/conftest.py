import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


def randomize_batchnorm(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BatchNorm layers non-trivial running statistics so eval mode is really exercised."""
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return net.eval()


@pytest.fixture
def pair72x64() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    base = torch.rand(1, 1, 72, 64, generator=gen)
    blurred = torch.nn.functional.avg_pool2d(base, 5, 1, 2, count_include_pad=False)
    return torch.cat([base, blurred], 1)
