"""The gait encoder: a 1D convolutional network over 2.56 s windows of motion."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EMBEDDING_DIM = 128
INPUT_CHANNELS = 8  # derived from the 6 raw channels, see gait_channels()


def gait_channels(x: torch.Tensor) -> torch.Tensor:
    """Raw windows [N, 6, T] (acc g, gyro rad/s) -> [N, 8, T] orientation-tolerant channels.

    The window mean of the accelerometer is mostly gravity, i.e. how the phone sits,
    which changes between sessions; removing it keeps the motion. Magnitudes of
    acceleration and rotation do not depend on the phone's orientation at all.
    """
    acc, gyro = x[:, :3], x[:, 3:6]
    acc_mag = torch.linalg.vector_norm(acc, dim=1, keepdim=True)
    gyro_mag = torch.linalg.vector_norm(gyro, dim=1, keepdim=True)
    acc = acc - acc.mean(-1, keepdim=True)
    acc_mag = acc_mag - acc_mag.mean(-1, keepdim=True)
    return torch.cat([acc, gyro, acc_mag, gyro_mag], 1)


def _block(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


class GaitEncoder(nn.Module):
    """[N, 6, 128] windows -> [N, EMBEDDING_DIM] unit-length embeddings."""

    def __init__(self, width: int = 32, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.width, self.dim = width, dim
        self.input_norm = nn.BatchNorm1d(INPUT_CHANNELS)
        self.body = nn.Sequential(
            _block(INPUT_CHANNELS, width, 7),
            _block(width, width, 5),
            nn.MaxPool1d(2),
            _block(width, 2 * width, 5),
            nn.MaxPool1d(2),
            _block(2 * width, 2 * width, 3),
            nn.MaxPool1d(2),
            _block(2 * width, 4 * width, 3),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(8 * width, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(self.input_norm(gait_channels(x)))
        # mean and max over time: the gait cycle may start anywhere in the window
        pooled = torch.cat([h.mean(-1), h.amax(-1)], 1)
        return F.normalize(self.head(pooled), dim=1)
