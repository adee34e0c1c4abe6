"""Scaled Manhattan (Araújo et al. 2005; Killourhy & Maxion 2009): the classic keystroke detector."""

from __future__ import annotations

import numpy as np

# the classic method `tacit eval keystroke` reports beside the model
BASELINE = "ScaledManhattan"


class ScaledManhattan:
    """Template = per-feature mean and mean absolute deviation; score = -sum |x - mean| / mad."""

    name = "scaled-manhattan"

    def fit(self, enrol: np.ndarray) -> object:
        x = np.asarray(enrol, dtype=np.float64).reshape(len(enrol), -1)
        mean = x.mean(axis=0)
        mad = np.abs(x - mean).mean(axis=0)
        return mean, np.maximum(mad, 1e-6)

    def score(self, state: object, probes: np.ndarray) -> np.ndarray:
        assert isinstance(state, tuple)
        mean: np.ndarray = state[0]
        mad: np.ndarray = state[1]
        x = np.asarray(probes, dtype=np.float64).reshape(len(probes), -1)
        return -(np.abs(x - mean) / mad).sum(axis=1)
