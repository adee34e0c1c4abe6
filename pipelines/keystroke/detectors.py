"""Anomaly detectors of one typing against an enrolment, and their per-user normalisation.

Every detector is a distance (lower = closer to the enrolment). Before they are
added, each is put on the user's own scale: its mean and standard deviation over the
enrolment's leave-one-out distances (each enrolment typing against the others). A
consistent typist then gets a tight scale, an erratic one a loose scale, and the
detectors become comparable with each other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]

DETECTORS: tuple[str, ...] = ("manhattan", "nearest", "outliers", "embedding")
LOG_OFFSET = 0.03  # seconds: log(t + 30 ms) keeps short holds and key overlaps finite


def log_timings(x: np.ndarray) -> np.ndarray:
    """Timings (s) -> log(max(t, 0) + 30 ms): times are skewed; a key overlap (UD < 0) counts as 0."""
    return np.log(np.maximum(np.asarray(x, dtype=np.float64), 0.0) + LOG_OFFSET)


def practice_trend(x: np.ndarray) -> np.ndarray:
    """Least-squares slope of each column over the rows in typing order: change per typing."""
    x = np.asarray(x, dtype=np.float64)
    k = np.arange(len(x)) - (len(x) - 1) / 2
    return np.asarray(
        (k[:, None] * (x - x.mean(axis=0))).sum(axis=0) / max(float((k**2).sum()), 1.0)
    )


def robust_scale(enrol: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension median and median absolute deviation (floored): a few slips do not move them."""
    median = np.median(enrol, axis=0)
    mad = np.maximum(np.median(np.abs(enrol - median), axis=0), floor)
    return median, mad


def manhattan(enrol: np.ndarray, probes: np.ndarray, *, keep: int, floor: float) -> np.ndarray:
    """Scaled Manhattan on median/MAD, counting only the `keep` smallest terms (one slip is not an impostor)."""
    median, mad = robust_scale(enrol, floor)
    dev = np.sort(np.abs(probes - median) / mad, axis=1)[:, :keep]
    return np.asarray(dev.mean(axis=1))


def nearest(enrol: np.ndarray, probes: np.ndarray, *, floor: float) -> np.ndarray:
    """Scaled Manhattan to the nearest single enrolment typing (a user may have several rhythms)."""
    _, mad = robust_scale(enrol, floor)
    d = (np.abs(probes[:, None, :] - enrol[None, :, :]) / mad).mean(axis=2)
    return np.asarray(d.min(axis=1))


def outliers(enrol: np.ndarray, probes: np.ndarray, *, z: float, floor: float) -> np.ndarray:
    """Share of timings further than `z` MADs from the median (Haider et al.'s outlier count)."""
    median, mad = robust_scale(enrol, floor)
    return np.asarray((np.abs(probes - median) / mad > z).mean(axis=1))


def embedding(enrol: np.ndarray, probes: np.ndarray, *, floor: float = 1e-3) -> np.ndarray:
    """Scaled Manhattan on median/MAD of the learned embedding, every dimension."""
    median, mad = robust_scale(enrol, floor)
    return np.asarray((np.abs(probes - median) / mad).mean(axis=1))


def leave_one_out(fn: Distance, enrol: np.ndarray) -> np.ndarray:
    """Each enrolment row's distance to the others, with `fn(enrol, probes) -> distances`."""
    keep = np.ones(len(enrol), dtype=bool)
    out = np.empty(len(enrol))
    for j in range(len(enrol)):
        keep[j] = False
        out[j] = fn(enrol[keep], enrol[j : j + 1])[0]
        keep[j] = True
    return out
