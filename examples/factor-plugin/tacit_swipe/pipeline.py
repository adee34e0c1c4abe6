"""The swipe pipeline: frame -> features -> embeddings -> template -> calibrated score."""

from __future__ import annotations

import numpy as np
import torch
from pipelines.base import DistancePipeline, SampleError, Template
from pipelines.evaluation.calibration import Calibration

from tacit_swipe.gestures import SwipeLimits, Swipes, decode_swipes, features
from tacit_swipe.model import SwipeEncoder

SPREAD_FLOOR = 0.05  # smallest per-dimension spread of a template (one steady user is not zero)


class SwipePipeline(DistancePipeline[Swipes, SwipeEncoder]):
    factor = "swipe"
    samples = "swipes"

    def __init__(
        self,
        encoder: SwipeEncoder,
        calibration: Calibration,
        *,
        model_version: str,
        device: str = "cpu",
    ) -> None:
        super().__init__(encoder, calibration, model_version=model_version, device=device)
        self.min_enrol_samples = 10
        self.limits = SwipeLimits()

    def decode(self, plaintext: bytes) -> Swipes:
        return decode_swipes(plaintext, self.limits)

    def preprocess(self, decoded: Swipes) -> np.ndarray:
        return features(decoded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 16] features -> [N, D] embeddings."""
        return self.encoder(x)

    def _rows(self, embeddings: np.ndarray) -> np.ndarray:
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != self.encoder.dim:
            raise SampleError(
                "swipe_bad_embeddings", f"expected embeddings [n, {self.encoder.dim}]"
            )
        return e

    def enrol(self, embeddings: np.ndarray) -> Template:
        e = self._rows(embeddings)
        if len(e) < self.min_enrol_samples:
            raise SampleError(
                "enrolment_too_small", f"{len(e)} swipes; need {self.min_enrol_samples}"
            )
        arrays = {
            "center": e.mean(0).astype(np.float32),
            "spread": np.maximum(e.std(0), SPREAD_FLOOR).astype(np.float32),
        }
        return Template(self.factor, self.model_version, arrays, samples=len(e))

    def distances(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """Per-swipe distance to the template in the user's own spread (lower = closer)."""
        e = self._rows(embeddings)
        center = np.asarray(template.arrays["center"], np.float64)
        spread = np.asarray(template.arrays["spread"], np.float64)
        return np.asarray(np.sqrt((((e - center) / spread) ** 2).mean(1)))
