"""The face factor pipeline: frames -> CNN embedding + LBP histograms -> template -> calibrated score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipelines.base import DistancePipeline, SampleError, Template
from pipelines.evaluation.calibration import Calibration
from pipelines.face.frames import FaceLimits, Frames, decode_frames, normalise
from pipelines.face.lbp import chi_square, lbp_histograms
from pipelines.face.model import FaceEncoder


@dataclass(frozen=True)
class Scoring:
    """How the two distances are combined (kept in calibration.json next to the weights).

    Each distance is divided by its median over impostor comparisons of the training
    subjects, so the weights say how much each counts on a common scale.
    """

    cnn_weight: float = 1.0
    lbp_weight: float = 1.0
    cnn_scale: float = 1.0
    lbp_scale: float = 1.0


class FacePipeline(DistancePipeline[Frames, FaceEncoder]):
    factor = "face"
    samples = "frames"

    def __init__(
        self,
        encoder: FaceEncoder,
        calibration: Calibration,
        scoring: Scoring,
        *,
        model_version: str,
        device: str = "cpu",
    ) -> None:
        super().__init__(encoder, calibration, model_version=model_version, device=device)
        self.scoring = scoring
        self.min_enrol_samples = 3
        self.limits = FaceLimits()

    def decode(self, plaintext: bytes) -> Frames:
        return decode_frames(plaintext, self.limits)

    def preprocess(self, decoded: Frames) -> np.ndarray:
        return normalise(decoded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, 56, 46] -> [N, D + LBP]: unit CNN embedding, then LBP histograms."""
        return torch.cat([self.encoder(x), lbp_histograms(x)], dim=1)

    def _split(self, e: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(np.asarray(e, dtype=np.float32))
        if t.ndim != 2 or t.shape[1] <= self.encoder.dim:
            raise SampleError("face_bad_embeddings", "embeddings must be [n, D]")
        return t[:, : self.encoder.dim], t[:, self.encoder.dim :]

    def enrol(self, embeddings: np.ndarray) -> Template:
        if len(embeddings) < self.min_enrol_samples:
            raise SampleError(
                "enrolment_too_small", f"{len(embeddings)} frames; need {self.min_enrol_samples}"
            )
        cnn, lbp = self._split(embeddings)
        # every enrolment frame is kept: the nearest one absorbs pose and expression changes
        return Template(
            self.factor,
            self.model_version,
            {"cnn": cnn.numpy(), "lbp": lbp.numpy()},
            samples=len(embeddings),
        )

    def distances(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """Per-frame distance to the nearest enrolment frame (lower = closer)."""
        cnn, lbp = self._split(embeddings)
        t_cnn = torch.from_numpy(np.asarray(template.arrays["cnn"], dtype=np.float32))
        t_lbp = torch.from_numpy(np.asarray(template.arrays["lbp"], dtype=np.float32))
        s = self.scoring
        d_cnn = (1.0 - cnn @ t_cnn.T).min(dim=1).values / s.cnn_scale
        d_lbp = chi_square(lbp, t_lbp).min(dim=1).values / s.lbp_scale
        return (s.cnn_weight * d_cnn + s.lbp_weight * d_lbp).double().numpy()

    def job_distance(self, distances: np.ndarray) -> float:
        """The median frame's distance."""
        return float(np.median(distances))
