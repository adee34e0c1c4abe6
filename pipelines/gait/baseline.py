"""A handcrafted gait baseline: window statistics compared by scaled Manhattan distance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the classic method `tacit eval gait` reports beside the model
BASELINE = "WindowStatsBaseline"


def window_features(x: np.ndarray) -> np.ndarray:
    """Model inputs [n, 6, 128] -> per-window statistics [n, 40].

    Per channel (acc x/y/z, gyro x/y/z, |acc|, |gyro|): mean, standard deviation,
    10th and 90th percentiles, and mean absolute first difference.
    """
    acc_mag = np.linalg.norm(x[:, :3], axis=1, keepdims=True)
    gyro_mag = np.linalg.norm(x[:, 3:6], axis=1, keepdims=True)
    ch = np.concatenate([x, acc_mag, gyro_mag], 1).astype(np.float64)
    p10, p90 = np.percentile(ch, [10, 90], axis=2)
    jerk = np.abs(np.diff(ch, axis=2)).mean(2)
    return np.concatenate([ch.mean(2), ch.std(2), p10, p90, jerk], 1)


@dataclass(frozen=True)
class _Profile:
    mean: np.ndarray
    spread: np.ndarray


class WindowStatsBaseline:
    """Scaled Manhattan (Araújo et al. 2005) over window statistics; higher score = more genuine."""

    name = "window-stats-scaled-manhattan"

    def fit(self, enrol: np.ndarray) -> object:
        f = window_features(enrol)
        mean = f.mean(0)
        spread = np.abs(f - mean).mean(0) + 1e-6  # mean absolute deviation per feature
        return _Profile(mean, spread)

    def score(self, state: object, probes: np.ndarray) -> np.ndarray:
        assert isinstance(state, _Profile)
        f = window_features(probes)
        return -(np.abs(f - state.mean) / state.spread).mean(1)
