"""Fit the gait calibration: window similarity -> log-likelihood ratio, and window fusion."""

from __future__ import annotations

import numpy as np

from pipelines.evaluation.calibration import Calibration
from pipelines.evaluation.protocol import EvalSubject
from pipelines.gait.pipeline import LLR_LIMIT, GaitPipeline, window_llr, window_similarity

FUSION_SIZES = (1, 2, 4, 8, 16, 32)
RHO_GRID = np.linspace(0.0, 1.0, 101)
SIMILARITY = "window similarity"  # what the calibration's input is (higher = more genuine)


def _logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """1-D logistic regression with balanced class weights (Newton's method, tiny ridge)."""
    w = np.where(y == 1, 0.5 / max(1, (y == 1).sum()), 0.5 / max(1, (y == 0).sum()))
    X = np.stack([x, np.ones_like(x)], 1)
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        grad = X.T @ (w * (p - y)) + 1e-6 * beta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def _log_loss(llr: np.ndarray, y: np.ndarray) -> float:
    """Balanced cross-entropy of posteriors sigmoid(llr) against labels."""
    ll = np.where(y == 1, np.logaddexp(0, -llr), np.logaddexp(0, llr))
    return float(0.5 * ll[y == 1].mean() + 0.5 * ll[y == 0].mean())


def similarity_runs(
    pipeline: GaitPipeline, subjects: list[EvalSubject], top_k: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per subject: genuine probe similarities and impostor similarities (in time order).

    Impostors here are every probe window of every other subject, so that runs of
    consecutive impostor windows exist for fitting the fusion.
    """
    probes = {
        s.subject: pipeline.embed_numpy(np.concatenate([x for _, x in s.genuine])) for s in subjects
    }
    genuine, impostor = [], []
    for s in subjects:
        enrolled = pipeline.embed_numpy(s.enrol)
        genuine.append(window_similarity(enrolled, probes[s.subject], top_k))
        for o in subjects:
            if o.subject != s.subject:
                impostor.append(window_similarity(enrolled, probes[o.subject][:64], top_k))
    return genuine, impostor


def fit_calibration(genuine: list[np.ndarray], impostor: list[np.ndarray]) -> Calibration:
    """Logistic calibration on windows, then the correlation `rho` that best fuses runs."""
    g, i = np.concatenate(genuine), np.concatenate(impostor)
    x = np.concatenate([g, i])
    y = np.concatenate([np.ones(g.size), np.zeros(i.size)])
    slope, intercept = _logistic(x, y)
    base = Calibration(intercept, slope, SIMILARITY, rho=0.0)
    # mean window llr of consecutive runs of n windows, labelled
    means, sizes, labels = [], [], []
    for label, runs in ((1, genuine), (0, impostor)):
        for run in runs:
            llr = window_llr(base, run)
            for n in FUSION_SIZES:
                for start in range(0, llr.size - n + 1, n):
                    means.append(llr[start : start + n].mean())
                    sizes.append(n)
                    labels.append(label)
    m, n_arr, y_runs = np.array(means), np.array(sizes, float), np.array(labels)
    losses = [
        _log_loss(np.clip(m * n_arr / (1 + (n_arr - 1) * r), -LLR_LIMIT, LLR_LIMIT), y_runs)
        for r in RHO_GRID
    ]
    return Calibration(intercept, slope, SIMILARITY, rho=float(RHO_GRID[int(np.argmin(losses))]))
