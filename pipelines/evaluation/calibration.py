"""Logistic calibration: raw distance -> P(genuine) and log-likelihood ratio.

Fitted with genuine and impostor comparisons weighted equally, so the logit is the
natural-log likelihood ratio (prior odds 1) and the score is P(genuine) at even
prior odds. A tenant's operating point is a threshold on either, chosen later.

A job carries several samples of one person, and their evidence is not independent
(same session, same mood, same camera). A job's llr is the mean per-sample llr times
an effective sample count n / (1 + (n - 1) rho): rho = 0 adds the samples' llrs as if
independent, rho = 1 counts the job as one sample. Both the per-sample fit and rho
are meant to be fitted on subjects the model was not trained on (out of fold).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """llr = intercept + slope * distance (slope < 0: closer is more genuine).

    The same holds for a similarity with slope > 0 (gait: `distance` names what it is).
    """

    intercept: float
    slope: float
    distance: str = "distance"  # what the distance is, for the reader of calibration.json
    rho: float = 1.0  # correlation of samples within one job (1: a job counts as one sample)

    def llr(self, distance: float | np.ndarray) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(distance, dtype=np.float64)

    def score(self, distance: float | np.ndarray) -> np.ndarray:
        return posterior(self.llr(distance))

    def job_llr(self, distances: np.ndarray) -> float:
        """One job's llr from its per-sample distances: mean llr times the effective sample count."""
        d = np.asarray(distances, dtype=np.float64).reshape(-1)
        n = d.size
        return float(self.llr(d).mean() * n / (1.0 + (n - 1) * self.rho))

    def save(self, path: Path, **extra: object) -> None:
        path.write_text(json.dumps({**asdict(self), **extra}, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        d = json.loads(path.read_text())
        return cls(
            intercept=float(d["intercept"]),
            slope=float(d["slope"]),
            distance=str(d.get("distance", "distance")),
            rho=float(d.get("rho", 1.0)),
        )


def posterior(llr: float | np.ndarray) -> np.ndarray:
    """P(genuine) at even prior odds from a natural-log likelihood ratio."""
    z = np.clip(np.asarray(llr, dtype=np.float64), -700.0, 700.0)
    return 1.0 / (1.0 + np.exp(-z))


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


JOB_SIZES = (2, 3, 4, 5, 8)  # phones send 4-5 typings or 4 frames; neighbours keep the fit stable
RHO_GRID = np.linspace(0.0, 1.0, 101)


def _balanced_log_loss(llr: np.ndarray, genuine: np.ndarray) -> float:
    loss = np.where(genuine, np.logaddexp(0.0, -llr), np.logaddexp(0.0, llr))
    return float(0.5 * loss[genuine].mean() + 0.5 * loss[~genuine].mean())


def fit_job_fusion(
    calibration: Calibration,
    genuine_runs: list[np.ndarray],
    impostor_runs: list[np.ndarray],
    sizes: tuple[int, ...] = JOB_SIZES,
) -> Calibration:
    """Choose rho so that jobs of consecutive samples get well-calibrated llrs (balanced log loss).

    Each run is one subject's distances in capture order (genuine: the owner's probes;
    impostor: one other person's probes against the same template); jobs are
    non-overlapping stretches of each size.
    """
    means, counts, labels = [], [], []
    for label, runs in ((True, genuine_runs), (False, impostor_runs)):
        for run in runs:
            llr = calibration.llr(np.asarray(run, dtype=np.float64))
            for n in sizes:
                for start in range(0, llr.size - n + 1, n):
                    means.append(llr[start : start + n].mean())
                    counts.append(n)
                    labels.append(label)
    if not means or all(labels) or not any(labels):
        return calibration
    m, n_arr, y = np.array(means), np.array(counts, dtype=np.float64), np.array(labels)
    losses = [_balanced_log_loss(m * n_arr / (1.0 + (n_arr - 1.0) * r), y) for r in RHO_GRID]
    rho = float(RHO_GRID[int(np.argmin(losses))])
    return Calibration(calibration.intercept, calibration.slope, calibration.distance, rho)
