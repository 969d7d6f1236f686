"""Per-window reference for dense scoring (the definition the fast paths must reproduce)."""
import torch

from ivif_ros.models import sobel_features


def per_window_scores(net, pair: torch.Tensor) -> torch.Tensor:
    """Python loop over windows: score = (l0-l1)(A over B) - (l0-l1)(B over A), halved for ``fast``."""
    k, s = net.window, net.stride
    fa, fb = sobel_features(pair[:, 0:1]), sobel_features(pair[:, 1:2])
    nh, nw = (pair.shape[2] - k) // s + 1, (pair.shape[3] - k) // s + 1
    out = torch.empty(pair.shape[0], 1, nh, nw)
    for i in range(nh):
        for j in range(nw):
            a = fa[:, :, i * s:i * s + k, j * s:j * s + k]
            b = fb[:, :, i * s:i * s + k, j * s:j * s + k]
            ab, ba = net.forward_patches(torch.cat([a, b], 2)), net.forward_patches(torch.cat([b, a], 2))
            out[:, 0, i, j] = (ab[:, 0] - ab[:, 1]) - (ba[:, 0] - ba[:, 1])
    return out
