"""Logistic calibration: raw distance -> P(genuine) and log-likelihood ratio.

Fitted with genuine and impostor comparisons weighted equally, so the logit is the
natural-log likelihood ratio (prior odds 1) and the score is P(genuine) at even
prior odds. A tenant's operating point is a threshold on either, chosen later.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """llr = intercept + slope * distance (slope < 0: closer is more genuine)."""

    intercept: float
    slope: float
    distance: str = "distance"  # what the distance is, for the reader of calibration.json

    def llr(self, distance: float | np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(distance, dtype=np.float64)

    def score(self, distance: float | np.ndarray) -> np.ndarray:
        z = np.clip(self.llr(distance), -700.0, 700.0)
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: Path, **extra: object) -> None:
        path.write_text(json.dumps({**asdict(self), **extra}, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        d = json.loads(path.read_text())
        return cls(
            intercept=float(d["intercept"]),
            slope=float(d["slope"]),
            distance=str(d.get("distance", "distance")),
        )


def fit_calibration(
    genuine: np.ndarray, impostor: np.ndarray, *, l2: float = 1e-3, name: str = "distance"
) -> Calibration:
    """Fit a logistic regression of genuine-vs-impostor on distance (Newton steps, balanced classes)."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    x = np.concatenate([g, i])
    y = np.concatenate([np.ones_like(g), np.zeros_like(i)])
    w = np.concatenate([np.full(g.size, 0.5 / g.size), np.full(i.size, 0.5 / i.size)])
    # standardise for a well-conditioned Newton solve, then map back
    mu, sd = float(x.mean()), float(x.std() or 1.0)
    xs = (x - mu) / sd
    X = np.stack([np.ones_like(xs), xs], axis=1)
    beta = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -700, 700)))
        grad = X.T @ (w * (p - y)) + l2 * np.array([0.0, beta[1]])
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + l2 * np.diag([0.0, 1.0]) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    slope = beta[1] / sd
    intercept = beta[0] - slope * mu
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise ValueError("calibration did not converge")
    return Calibration(intercept=float(intercept), slope=float(slope), distance=name)
