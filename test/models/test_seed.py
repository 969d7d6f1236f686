import math

import pytest
import torch
from conftest import randomize_batchnorm
from torch import nn

from ivif_ros.models import SeedNet, create_model, load_model, sobel_features

from _dense import per_window_scores


class AuthorsBlock(nn.Module):
    """The research code's ResBlock(in, out, down=True), written from its description (SEED-ALGORITHM §2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True), nn.MaxPool2d(2))
        self.residual = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size=1), nn.BatchNorm2d(cout),
            nn.Conv2d(cout, cout, kernel_size=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True),
            nn.MaxPool2d(2))

    def forward(self, x):
        return self.residual(x) + self.shortcut(x)


def _authors_stem() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 64, kernel_size=3, padding=1), nn.BatchNorm2d(64),
                         nn.LeakyReLU(0.1, inplace=True))


class AuthorsCNN(nn.Module):
    """The research code's ``CNN``: three paths fed separately, fc over both flattened branches."""

    def __init__(self) -> None:
        super().__init__()
        for k in (1, 2, 3):
            setattr(self, f"conv1_{k}", _authors_stem())
            setattr(self, f"ResBlock2_{k}", AuthorsBlock(64, 128))
            setattr(self, f"ResBlock3_{k}", AuthorsBlock(128, 128))
        self.ResBlock4_1 = AuthorsBlock(128, 256)
        self.ResBlock4_23 = AuthorsBlock(256, 256)
        self.fc = nn.Sequential(nn.Linear(2 * 256 * 8 * 4, 256), nn.BatchNorm1d(256), nn.LeakyReLU(0.1, inplace=True),
                                nn.Linear(256, 2))

    def forward(self, x, y, z):
        p1 = self.ResBlock4_1(self.ResBlock3_1(self.ResBlock2_1(self.conv1_1(x))))
        p2 = self.ResBlock3_2(self.ResBlock2_2(self.conv1_2(y)))
        p3 = self.ResBlock3_3(self.ResBlock2_3(self.conv1_3(z)))
        p23 = self.ResBlock4_23(torch.cat([p2, p3], 1))
        return self.fc(torch.cat([p1.view(p1.size(0), -1), p23.view(p23.size(0), -1)], 1))


def _randomized(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            scale = 0.5 / math.sqrt(max(p[0].numel(), 1)) if p.dim() > 1 else 0.2
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return randomize_batchnorm(module, seed)


@pytest.fixture(scope="module")
def net() -> SeedNet:
    torch.manual_seed(0)
    return randomize_batchnorm(create_model("seed"))


@pytest.fixture(scope="module")
def authors() -> AuthorsCNN:
    return _randomized(AuthorsCNN(), seed=5)


def _authors_logits(model: AuthorsCNN, x: torch.Tensor) -> torch.Tensor:
    return model((x[:, 0:1] - 0.45) / 0.1, (x[:, 1:2] - 0.05) / 0.09, (x[:, 2:3] - 0.06) / 0.09)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix"])
def test_authors_checkpoint_loads_and_gives_their_logits(authors, tmp_path, wrap):
    state = authors.state_dict()
    if wrap == "module_prefix":
        state = {f"module.{k}": v for k, v in state.items()}
    elif wrap != "plain":
        state = {wrap: state, "epoch": 30}
    path = tmp_path / "EResNet_trained_model.pth"
    torch.save(state, path)
    ours, info = load_model(path)
    assert info.arch == "seed" and info.trained and isinstance(ours, SeedNet)
    x = torch.rand(6, 3, 64, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = _authors_logits(authors, x), ours.forward_patches(x)
    assert expected.abs().max() > 0.1  # the comparison is not between near-zero outputs
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_parameter_names_are_the_authors(net, authors):
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in authors.state_dict().items()}
    assert ours == theirs
    assert "ResBlock4_23.residual.2.weight" in ours and "conv1_3.0.weight" in ours and "fc.3.bias" in ours


def test_init_is_xavier_with_gain_sqrt2_on_the_residual_convs():
    torch.manual_seed(1)
    block = create_model("seed").ResBlock3_1
    fan = 128 + 128  # 1x1 conv 128 -> 128: fan_in + fan_out
    for conv, gain in ((block.residual[0], math.sqrt(2)), (block.residual[2], math.sqrt(2)), (block.shortcut[0], 1.0)):
        bound = gain * math.sqrt(6.0 / fan)
        assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(conv.bias) == 0


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


@pytest.mark.parametrize("stride", [20, 40])
def test_dense_equals_per_window_definition(net, pair72x64, stride):
    net.stride, net.chunk, net.votes, net.dense = stride, 7, False, "exact"  # odd chunk: chunk boundaries
    with torch.no_grad():
        dense, ref = net(pair72x64), per_window_scores(net, pair72x64)
    assert dense.shape == (1, 1, (72 - 32) // stride + 1, (64 - 32) // stride + 1)
    torch.testing.assert_close(dense, ref, rtol=1e-4, atol=1e-4)


def _authors_votes(net: SeedNet, pair: torch.Tensor) -> torch.Tensor:
    """Model_Test.py's rule per window: score1 = argmax(A over B), score2 = argmax(B over A); +1 if score1 <= score2."""
    k, s = net.window, net.stride
    fa, fb = sobel_features(pair[:, 0:1]), sobel_features(pair[:, 1:2])
    nh, nw = (pair.shape[2] - k) // s + 1, (pair.shape[3] - k) // s + 1
    out = torch.empty(1, 1, nh, nw)
    for i in range(nh):
        for j in range(nw):
            a = fa[:, :, i * s:i * s + k, j * s:j * s + k]
            b = fb[:, :, i * s:i * s + k, j * s:j * s + k]
            score1 = torch.max(net.forward_patches(torch.cat([a, b], 2)), 1)[1].item()
            score2 = torch.max(net.forward_patches(torch.cat([b, a], 2)), 1)[1].item()
            out[0, 0, i, j] = 1.0 if score1 <= score2 else -1.0
    return out


def test_votes_follow_the_authors_tie_rule(pair72x64):
    torch.manual_seed(4)
    net = randomize_batchnorm(create_model("seed", stride=16, votes=True))
    with torch.no_grad():
        net.fc[3].bias.copy_(torch.tensor([0.0, 0.3]))  # push some windows to "bottom sharp" in both orders
        votes, ref = net(pair72x64), _authors_votes(net, pair72x64)
    torch.testing.assert_close(votes, ref)
    assert set(votes.unique().tolist()) <= {-1.0, 1.0}


def test_votes_tie_goes_to_visible():
    """Both orders pick the same class (a tie of the two argmaxes): the vote is +1 (visible)."""
    net = create_model("seed", votes=True)
    same = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert net._combine(same, same).tolist() == [1.0, 1.0]
    assert net._combine(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])).tolist() == [-1.0]
    equal = torch.tensor([[1.0, 1.0]])  # equal logits: torch.max picks class 0
    assert net._combine(equal, equal).tolist() == [1.0]


def test_shared_dense_equals_exact_when_stems_ignore_neighbours(pair72x64):
    """With centre-only 3x3 stems, window borders cannot matter: the shared pass must equal the exact one."""
    torch.manual_seed(2)
    net = randomize_batchnorm(create_model("seed", stride=8))
    with torch.no_grad():
        for stem in (net.conv1_1, net.conv1_2, net.conv1_3):
            centre = stem[0].weight[:, :, 1, 1].clone()
            stem[0].weight.zero_()
            stem[0].weight[:, :, 1, 1] = centre
        exact = net(pair72x64)
        net.dense = "shared"
        shared = net(pair72x64)
    assert shared.shape == exact.shape == (1, 1, 6, 5)
    torch.testing.assert_close(shared, exact, rtol=1e-4, atol=1e-4)


def test_shared_dense_needs_a_multiple_of_8(net, pair72x64):
    net.stride, net.dense = 12, "shared"
    with pytest.raises(ValueError, match="multiple of 8"):
        net(pair72x64)
    net.dense = "bogus"
    with pytest.raises(ValueError, match="dense must be one of"):
        net(pair72x64)
    net.dense = "exact"


def test_dense_is_antisymmetric(net, pair72x64):
    net.stride, net.chunk, net.votes, net.dense = 16, 2048, False, "exact"
    with torch.no_grad():
        torch.testing.assert_close(net(pair72x64.flip(1)), -net(pair72x64), rtol=1e-4, atol=1e-4)


def test_too_small_input_rejected(net):
    with pytest.raises(ValueError, match="at least 32x32"):
        net(torch.rand(1, 2, 31, 40))


def test_default_chunk_bounds_the_batch(pair72x64):
    """The dense pass never stacks more than 2 × chunk samples at once (memory stays bounded)."""
    net = create_model("seed").eval()
    net.stride, net.chunk = 8, 4  # 6 × 5 = 30 windows -> 8 chunks
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
    assert max(batches) <= 2 * 4 and sum(batches) == 2 * 30
    torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-4)
    assert create_model("seed").chunk <= 256
