"""Training augmentation for face crops: small affine jitter, mirror, brightness and contrast."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """[N, 1, H, W] normalised crops -> randomly perturbed copies (seeded by `g`)."""
    n = len(x)

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g) - 0.5

    angle = u(n) * 2 * math.radians(10)
    scale = 1 + u(n) * 0.2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, u(n) * 0.16], 1), torch.stack([sin, cos, u(n) * 0.16], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    flip = torch.rand(n, generator=g) < 0.5
    y[flip] = y[flip].flip(-1)
    return y * (1 + u(n, 1, 1, 1) * 0.4) + u(n, 1, 1, 1) * 0.4
