"""The swipe encoder: 16 features of one swipe -> an embedding (a small MLP)."""

from __future__ import annotations

import torch
from torch import nn

from tacit_swipe.gestures import N_FEATURES


class SwipeEncoder(nn.Module):
    def __init__(self, n_features: int = N_FEATURES, hidden: int = 64, dim: int = 16) -> None:
        super().__init__()
        # population statistics of the features, kept with the weights
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.n_features, self.hidden, self.dim = n_features, hidden, dim
        self.mean: torch.Tensor
        self.std: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
