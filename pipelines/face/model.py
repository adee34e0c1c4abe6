"""The face encoder: a small CNN from a normalised 56x46 grayscale crop to a unit-length embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class FaceEncoder(nn.Module):
    def __init__(self, width: int = 32, dim: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, width),
            nn.MaxPool2d(2),  # 28x23
            _block(width, 2 * width),
            nn.MaxPool2d(2),  # 14x11
            _block(2 * width, 4 * width),
            nn.MaxPool2d(2),  # 7x5
            _block(4 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width * 7 * 5, dim)
        self.width, self.dim = width, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, 56, 46] -> [N, dim], unit length."""
        # keeping the spatial layout (no global pooling) keeps where features are on the face
        h = self.features(x).flatten(1)
        return F.normalize(self.head(F.dropout(h, 0.3, self.training)), dim=1)
