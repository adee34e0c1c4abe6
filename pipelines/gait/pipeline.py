"""The gait factor pipeline: plaintext motion -> windows -> embeddings -> calibrated score."""

from __future__ import annotations

import math

import numpy as np
import torch

from pipelines.base import SampleError, Template, TorchPipeline, Verification, check_template
from pipelines.codec import decode_factor
from pipelines.evaluation.calibration import Calibration
from pipelines.gait.model import GaitEncoder
from pipelines.gait.signal import GaitLimits, GaitRecording, recording_from_arrays, windows

FACTOR = "gait"
SCHEMA = 1
LLR_LIMIT = 30.0  # keeps sigmoid(llr) strictly inside (0, 1) in float64


def window_llr(calibration: Calibration, similarity: np.ndarray) -> np.ndarray:
    """Per-window log-likelihood ratio from the window similarity, clipped to ±LLR_LIMIT."""
    return np.clip(calibration.llr(similarity), -LLR_LIMIT, LLR_LIMIT)


def fused_llr(calibration: Calibration, window_llrs: np.ndarray) -> float:
    """A batch's llr: windows of one walk are correlated, so the mean window llr times the
    effective count ``n / (1 + (n - 1) * rho)`` instead of the plain sum, clipped."""
    n = window_llrs.size
    n_eff = n / (1.0 + (n - 1) * calibration.rho)
    return float(np.clip(window_llrs.mean() * n_eff, -LLR_LIMIT, LLR_LIMIT))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def window_similarity(enrolled: np.ndarray, probes: np.ndarray, top_k: int) -> np.ndarray:
    """Cosine similarity of each probe to its `top_k` nearest enrolment embeddings, averaged."""
    sims = probes.astype(np.float64) @ enrolled.astype(np.float64).T  # unit vectors: cosine
    k = max(1, min(top_k, sims.shape[1]))
    nearest = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return nearest.mean(1)


class GaitPipeline(TorchPipeline[GaitRecording]):
    """FactorPipeline for gait (see pipelines/base.py and docs/plaintext.md "Gait").

    `calibration` maps a window's similarity (higher = more genuine, so slope > 0) to its
    llr; `top_k` is how many nearest enrolment windows a window's similarity averages.
    """

    factor = FACTOR
    min_enrol_samples = 20  # windows: about 27 s of walking

    def __init__(
        self,
        model: GaitEncoder,
        calibration: Calibration,
        model_version: str,
        device: str,
        *,
        top_k: int,
    ) -> None:
        super().__init__(model_version=model_version, device=device)
        self.model = model.to(self.device).eval()
        self.calibration = calibration
        self.top_k = top_k
        self.limits = GaitLimits()

    def decode(self, plaintext: bytes) -> GaitRecording:
        """Plaintext frame -> validated 50 Hz recording (acc in g, gyro in rad/s)."""
        frame = decode_factor(plaintext, FACTOR, SCHEMA, self.limits.frame_limits())
        rate = frame.require("rate_hz")
        if rate.size != 1 or not np.issubdtype(rate.dtype, np.number):
            raise SampleError("gait_bad_rate", "rate_hz must be one number")
        t = frame.arrays.get("t")
        return recording_from_arrays(
            frame.require("acc"),
            frame.require("gyro"),
            float(rate.reshape(())),
            t,
            max_windows=self.limits.max_windows,
        )

    def preprocess(self, decoded: GaitRecording) -> np.ndarray:
        """Recording -> model inputs [n_windows, 6, 128] float32."""
        return windows(decoded, self.limits.max_windows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Windows [N, 6, 128] -> unit embeddings [N, D]."""
        return self.model(x)

    def enrol(self, embeddings: np.ndarray) -> Template:
        """All enrolment window embeddings [n, D] -> template holding them all."""
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or e.shape[0] < self.min_enrol_samples:
            raise SampleError(
                "gait_too_few_enrol_samples",
                f"{e.shape[0] if e.ndim == 2 else 0} windows; need {self.min_enrol_samples}",
            )
        return Template(self.factor, self.model_version, {"embeddings": e}, int(e.shape[0]))

    def window_scores(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """Raw per-window similarity to the template (higher = more genuine)."""
        check_template(template, factor=self.factor, model_version=self.model_version)
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or e.shape[0] == 0:
            raise SampleError("gait_no_windows", "no embeddings to verify")
        return window_similarity(template.arrays["embeddings"], e, self.top_k)

    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        """One batch's window embeddings vs a template -> fused calibrated verification."""
        sims = self.window_scores(template, embeddings)
        llr = window_llr(self.calibration, sims)
        fused = fused_llr(self.calibration, llr)
        return Verification(
            score=1.0 / (1.0 + math.exp(-fused)),
            distance=float(1.0 - sims.mean()),
            llr=fused,
            per_sample=[float(p) for p in _sigmoid(llr)],
        )
