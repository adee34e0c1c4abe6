"""Verification error rates from genuine and impostor scores (higher score = more genuine)."""

from __future__ import annotations

import numpy as np


def error_curve(
    genuine: np.ndarray, impostor: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FMR and FNMR at every distinct threshold, accepting scores >= threshold.

    Returns (thresholds, fmr, fnmr), thresholds ascending; a last threshold of +inf
    (accept nothing) closes the curve.
    """
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    if g.size == 0 or i.size == 0:
        raise ValueError("need at least one genuine and one impostor score")
    thresholds = np.unique(np.concatenate([g, i, [np.inf]]))
    gs, im = np.sort(g), np.sort(i)
    # count of scores strictly below each threshold = rejected
    fnmr = np.searchsorted(gs, thresholds, side="left") / g.size
    fmr = 1.0 - np.searchsorted(im, thresholds, side="left") / i.size
    return thresholds, fmr, fnmr


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal-error rate: where FMR and FNMR cross, interpolated between adjacent thresholds.

    Between two thresholds the operating points lie on a segment (a randomised
    decision), so the crossing point is exact rather than the nearer of two steps.
    """
    _, fmr, fnmr = error_curve(genuine, impostor)
    diff = fmr - fnmr  # decreasing from >= 0 to <= 0 as the threshold rises
    k = int(np.argmax(diff <= 0))
    if diff[k] == 0 or k == 0:
        return float((fmr[k] + fnmr[k]) / 2)
    d0, d1 = diff[k - 1], diff[k]
    t = d0 / (d0 - d1)
    return float(fmr[k - 1] + t * (fmr[k] - fmr[k - 1]))


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, target: float) -> float:
    """Lowest FNMR over thresholds whose FMR does not exceed `target`."""
    _, fmr, fnmr = error_curve(genuine, impostor)
    ok = fmr <= target
    return float(fnmr[ok].min())
