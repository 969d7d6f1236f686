import pytest
import torch
from conftest import randomize_batchnorm

from ivif_ros.models import FastNet, create_model

from _dense import per_window_scores


@pytest.fixture(scope="module")
def net() -> FastNet:
    torch.manual_seed(0)
    net = randomize_batchnorm(create_model("fast"))
    with torch.no_grad():  # non-zero biases: the head must stay antisymmetric regardless
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return net


def test_forward_patches_logits_are_halved_score(net):
    x = torch.rand(4, 3, 64, 32)
    with torch.no_grad():
        logits = net.forward_patches(x)
    assert logits.shape == (4, 2)
    torch.testing.assert_close(logits[:, 0], -logits[:, 1])


def test_swapping_blocks_flips_the_decision(net):
    x = torch.rand(4, 3, 64, 32)
    swapped = torch.cat([x[:, :, 32:], x[:, :, :32]], 2)
    with torch.no_grad():
        torch.testing.assert_close(net.forward_patches(swapped), net.forward_patches(x).flip(1))


@pytest.mark.parametrize("stride", [4, 8, 16])
def test_dense_equals_per_window_definition(net, pair72x64, stride):
    net.stride = stride
    with torch.no_grad():
        dense, ref = net(pair72x64), per_window_scores(net, pair72x64)
    assert dense.shape == (1, 1, (72 - 32) // stride + 1, (64 - 32) // stride + 1)
    # per_window_scores doubles fast's score (AB and BA agree by construction)
    torch.testing.assert_close(2 * dense, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(32, 32), (35, 47), (100, 61)])
def test_dense_output_size(net, size):
    net.stride = 8
    with torch.no_grad():
        out = net(torch.rand(2, 2, *size))
    assert out.shape == (2, 1, (size[0] - 32) // 8 + 1, (size[1] - 32) // 8 + 1)


def test_non_contiguous_input(net, pair72x64):
    net.stride = 8
    wide = torch.cat([pair72x64, pair72x64], 3)[..., ::2]
    with torch.no_grad():
        torch.testing.assert_close(net(wide), net(wide.contiguous()))


@pytest.mark.parametrize("bad", [0, 6, -4, 2.0, True])
def test_stride_validation(net, bad):
    with pytest.raises(ValueError, match="multiple of 4"):
        net.stride = bad
