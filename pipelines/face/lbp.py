"""Local binary pattern histograms (Ahonen et al. 2006), in torch so they run where the model runs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# 8 neighbours at radius 1, clockwise from top-left
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _uniform_table() -> torch.Tensor:
    """Map each 8-bit code to one of 58 uniform patterns (at most 2 transitions) or bin 58."""
    table = torch.full((256,), 58, dtype=torch.long)
    k = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        if sum(bits[i] != bits[(i + 1) % 8] for i in range(8)) <= 2:
            table[code] = k
            k += 1
    return table


UNIFORM = _uniform_table()
BINS = 59


def lbp_histograms(x: torch.Tensor, grid: tuple[int, int] = (7, 6)) -> torch.Tensor:
    """[N, 1, H, W] images -> [N, cells * 59] per-cell normalised uniform-LBP histograms."""
    c = x[:, 0]
    p = F.pad(c, (1, 1, 1, 1), mode="replicate")
    h, w = c.shape[1:]
    code = torch.zeros_like(c, dtype=torch.long)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        code |= (p[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] >= c).long() << bit
    u = UNIFORM.to(x.device)[code]  # [N, H, W]
    onehot = F.one_hot(u, BINS).permute(0, 3, 1, 2).float()  # [N, 59, H, W]
    hist = F.adaptive_avg_pool2d(onehot, grid)  # fraction of each pattern per cell
    return hist.flatten(1)


def chi_square(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise chi-square distance between histogram rows of a [n, K] and b [m, K] -> [n, m]."""
    num = (a[:, None, :] - b[None, :, :]) ** 2
    den = (a[:, None, :] + b[None, :, :]).clamp_min(1e-9)
    return (num / den).sum(-1)
