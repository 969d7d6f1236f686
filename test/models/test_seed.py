import pytest
import torch
from conftest import randomize_batchnorm
from _dense import per_window_scores

from ivif_ros.models import SeedNet, create_model


@pytest.fixture(scope="module")
def net() -> SeedNet:
    torch.manual_seed(0)
    return randomize_batchnorm(create_model("seed"))


def test_layout_follows_the_paper(net):
    assert [m.out_channels for m in (net.path1[0][0], net.path2[0][0], net.path3[0][0])] == [64, 64, 64]
    assert [b.branch[0].out_channels for b in net.path1[1:]] == [128, 128, 256]
    assert [b.branch[0].out_channels for b in net.path2[1:]] == [128, 128]
    assert net.merge.branch[0].in_channels == 256 and net.merge.branch[0].out_channels == 256
    assert isinstance(net.path1[1].shortcut, torch.nn.Conv2d) and isinstance(net.path1[2].shortcut, torch.nn.Identity)
    assert net.head[0].in_features == 2 * 256 * 8 * 4 and net.head[0].out_features == 256
    assert isinstance(net.head[1], torch.nn.BatchNorm1d) and net.head[3].out_features == 2


def test_forward_patches_shape(net):
    with torch.no_grad():
        assert net.forward_patches(torch.rand(3, 3, 64, 32)).shape == (3, 2)


def test_paths_see_their_own_channel(net):
    x = torch.rand(2, 3, 64, 32)
    with torch.no_grad():
        base = net.forward_patches(x)
        for c in range(3):
            y = x.clone()
            y[:, c] = torch.rand(2, 64, 32)
            assert not torch.allclose(net.forward_patches(y), base)


@pytest.mark.parametrize("stride", [12, 20])
def test_dense_equals_per_window_definition(net, pair72x64, stride):
    net.stride, net.chunk = stride, 7  # odd chunk: exercises the chunk boundaries
    with torch.no_grad():
        dense, ref = net(pair72x64), per_window_scores(net, pair72x64)
    assert dense.shape == (1, 1, (72 - 32) // stride + 1, (64 - 32) // stride + 1)
    torch.testing.assert_close(dense, ref, rtol=1e-4, atol=1e-4)


def test_dense_is_antisymmetric(net, pair72x64):
    net.stride, net.chunk = 16, 2048
    with torch.no_grad():
        torch.testing.assert_close(net(pair72x64.flip(1)), -net(pair72x64), rtol=1e-4, atol=1e-4)


def test_too_small_input_rejected(net):
    with pytest.raises(ValueError, match="at least 32x32"):
        net(torch.rand(1, 2, 31, 40))


def test_default_chunk_bounds_the_batch(pair72x64):
    """The dense pass never stacks more than 2 × chunk samples at once (memory stays bounded)."""
    from ivif_ros.models import create_model

    net = create_model("seed").eval()
    net.stride, net.chunk = 4, 5  # 11 × 9 = 99 windows -> 20 chunks
    batches: list[int] = []
    original = net.forward_patches

    def recording(x):
        batches.append(x.shape[0])
        return original(x)

    with torch.no_grad():
        chunked = net(pair72x64)
        net.forward_patches = recording
        net(pair72x64)
        net.chunk = 10_000
        del net.forward_patches
        whole = net(pair72x64)
    assert max(batches) <= 2 * 5 and sum(batches) == 2 * 99
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-4)
    assert create_model("seed").chunk <= 256
