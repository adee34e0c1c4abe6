"""The keystroke factor pipeline: fixed-phrase typings -> embeddings -> template -> calibrated score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipelines.base import DistancePipeline, SampleError, Template
from pipelines.evaluation.calibration import Calibration
from pipelines.keystroke import detectors
from pipelines.keystroke.detectors import DETECTORS
from pipelines.keystroke.events import KeystrokeLimits, Typing, decode_typings, features
from pipelines.keystroke.model import KeystrokeEncoder


@dataclass(frozen=True)
class Scoring:
    """How a template is built and compared (kept in calibration.json next to the weights).

    The four weights fuse the detectors after per-user normalisation; they and `ahead`
    are chosen by cross-validation over the training subjects (pipelines/keystroke/train.py).
    """

    recent: int = 75  # enrol on the most recent typings only: typing rhythm drifts with practice
    # None: the template is the recent typings as typed. A number: each recent typing is
    # moved along the enrolment's own practice trend (per-timing slope over all enrolment
    # typings) to the point `ahead` typings after the last one, where probes will come from
    ahead: int | None = None
    keep: int = 28  # timings counted per typing: the 3 most deviant are dropped (one slip is not an impostor)
    floor: float = 0.01  # smallest MAD of a log timing (about 1%)
    outlier_z: float = 3.0
    manhattan: float = 1.0
    nearest: float = 0.25
    outliers: float = 0.0
    embedding: float = 0.25

    def weights(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in DETECTORS])


class KeystrokePipeline(DistancePipeline[list[Typing], KeystrokeEncoder]):
    factor = "keystroke"
    samples = "typings"

    def __init__(
        self,
        encoder: KeystrokeEncoder,
        calibration: Calibration,
        scoring: Scoring,
        *,
        model_version: str,
        device: str = "cpu",
    ) -> None:
        super().__init__(encoder, calibration, model_version=model_version, device=device)
        self.scoring = scoring
        self.min_enrol_samples = 20
        self.limits = KeystrokeLimits()
        self.emb_dim = encoder.dim

    def decode(self, plaintext: bytes) -> list[Typing]:
        return decode_typings(plaintext, self.limits)

    def preprocess(self, decoded: list[Typing]) -> np.ndarray:
        return features(decoded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 31] timings (s) -> [N, D + 31]: learned embedding, then the timings themselves."""
        return torch.cat([self.encoder(x), x], dim=1)

    def _split(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.asarray(e, dtype=np.float64)
        if e.ndim != 2 or e.shape[1] != self.emb_dim + self.encoder.n_features:
            raise SampleError(
                "keystroke_bad_embeddings",
                f"expected embeddings [n, {self.emb_dim + self.encoder.n_features}]",
            )
        return e[:, : self.emb_dim], e[:, self.emb_dim :]

    def enrol(self, embeddings: np.ndarray) -> Template:
        if len(embeddings) < self.min_enrol_samples:
            raise SampleError(
                "enrolment_too_small", f"{len(embeddings)} typings; need {self.min_enrol_samples}"
            )
        emb_all, raw_all = self._split(embeddings)
        timings_all = detectors.log_timings(raw_all)
        recent = min(self.scoring.recent, len(embeddings))
        emb, timings = emb_all[-recent:], timings_all[-recent:]
        if self.scoring.ahead is not None:
            # typings before the last one are further from the target point: moved further
            age = (recent + self.scoring.ahead - np.arange(recent))[:, None]
            timings = timings + detectors.practice_trend(timings_all) * age
            emb = emb + detectors.practice_trend(emb_all) * age
        # each detector's spread over the enrolment itself (leave one out) is this user's scale
        norm = np.tile(np.array([0.0, 1.0]), (len(DETECTORS), 1))
        for k, (name, w) in enumerate(zip(DETECTORS, self.scoring.weights(), strict=True)):
            if w == 0.0:
                continue
            loo = detectors.leave_one_out(self._detector(name), np.hstack([timings, emb]))
            norm[k] = loo.mean(), max(float(loo.std()), 1e-6)
        arrays = {
            "timings": timings.astype(np.float32),
            "embeddings": emb.astype(np.float32),
            "norm": norm.astype(np.float32),
        }
        return Template(self.factor, self.model_version, arrays, samples=len(embeddings))

    def _detector(self, name: str) -> detectors.Distance:
        """Detector `name` on rows of [log timings | embedding]."""
        s, n = self.scoring, self.encoder.n_features
        if name == "manhattan":
            return lambda e, p: detectors.manhattan(e[:, :n], p[:, :n], keep=s.keep, floor=s.floor)
        if name == "nearest":
            return lambda e, p: detectors.nearest(e[:, :n], p[:, :n], floor=s.floor)
        if name == "outliers":
            return lambda e, p: detectors.outliers(e[:, :n], p[:, :n], z=s.outlier_z, floor=s.floor)
        return lambda e, p: detectors.embedding(e[:, n:], p[:, n:])

    def detector_scores(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """[n, 4] per-typing detector distances on the user's own scale (0 = a typical enrolment typing)."""
        emb, raw = self._split(embeddings)
        a = template.arrays
        enrol = np.hstack(
            [np.asarray(a["timings"], np.float64), np.asarray(a["embeddings"], np.float64)]
        )
        probes = np.hstack([detectors.log_timings(raw), emb])
        norm = np.asarray(a["norm"], dtype=np.float64)
        out = np.zeros((len(probes), len(DETECTORS)))
        for k, (name, w) in enumerate(zip(DETECTORS, self.scoring.weights(), strict=True)):
            if w != 0.0:
                out[:, k] = (self._detector(name)(enrol, probes) - norm[k, 0]) / norm[k, 1]
        return out

    def distances(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """Per-typing fused distance to the template (lower = closer)."""
        return np.asarray(self.detector_scores(template, embeddings) @ self.scoring.weights())
