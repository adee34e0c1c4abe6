"""The keystroke encoder: timing features of one typing -> an embedding.

Timings are first put on a log-like scale (hold and down-down times are positive and
skewed; up-down times can be negative when keys overlap), standardised with
population statistics kept as buffers, then passed through a small MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from pipelines.keystroke.events import N_FEATURES


def timing_scale(x: torch.Tensor) -> torch.Tensor:
    """Seconds -> asinh(t / 10 ms): log-like for long times, linear near zero and for overlaps."""
    return torch.asinh(x / 0.01)


class KeystrokeEncoder(nn.Module):
    def __init__(self, n_features: int = N_FEATURES, hidden: int = 128, dim: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim),
        )
        self.n_features, self.hidden, self.dim = n_features, hidden, dim
        self.mean: torch.Tensor
        self.std: torch.Tensor

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Population-standardised timing scale, [N, n_features]."""
        return (timing_scale(x) - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.scaled(x))
