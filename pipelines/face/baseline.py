"""Eigenfaces (Turk & Pentland 1991): PCA of the gallery, nearest neighbour in face space."""

from __future__ import annotations

import numpy as np

# the classic method `tacit eval face` reports beside the model
BASELINE = "Eigenfaces"


class Eigenfaces:
    """Face space from every subject's enrolment images (`prepare`), or from the enrolment alone."""

    name = "eigenfaces"

    def __init__(self, components: int = 40) -> None:
        self.components = components
        self.mean: np.ndarray | None = None
        self.basis: np.ndarray | None = None

    def prepare(self, gallery: list[np.ndarray]) -> None:
        """Fit the face space on all enrolment images (no probe is used)."""
        x = np.concatenate([g.reshape(len(g), -1) for g in gallery]).astype(np.float64)
        self.mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.basis = vt[: min(self.components, len(x) - 1)]

    def _project(self, x: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.basis is not None
        return (x.reshape(len(x), -1).astype(np.float64) - self.mean) @ self.basis.T

    def fit(self, enrol: np.ndarray) -> object:
        if self.basis is None:
            self.prepare([enrol])
        return self._project(enrol)

    def score(self, state: object, probes: np.ndarray) -> np.ndarray:
        gallery = np.asarray(state)
        p = self._project(probes)
        d = np.sqrt(((p[:, None, :] - gallery[None, :, :]) ** 2).sum(-1)).min(axis=1)
        return -d
