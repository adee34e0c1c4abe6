"""The keystroke factor pipeline: fixed-phrase typings -> embeddings -> template -> calibrated score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipelines.base import SampleError, Template, Verification
from pipelines.evaluation.calibration import Calibration
from pipelines.keystroke.events import decode_typings, features
from pipelines.keystroke.model import KeystrokeEncoder


@dataclass(frozen=True)
class Scoring:
    """How a template is built and compared (kept in calibration.json next to the weights)."""

    recent: int = 75  # enrol on the most recent typings only: typing rhythm drifts with practice
    keep: int = 28  # timings counted per typing: the 3 most deviant are dropped (one slip is not an impostor)
    raw_weight: float = 1.0  # weight of scaled Manhattan on the timings
    emb_weight: float = 0.5  # weight of scaled Manhattan in the learned embedding


def scaled_manhattan(
    x: np.ndarray, centre: np.ndarray, spread: np.ndarray, keep: int | None = None
) -> np.ndarray:
    """Mean over dimensions of |x - centre| / spread, one value per row; only the `keep` smallest count."""
    dev = np.abs(x - centre) / spread
    if keep is not None and keep < dev.shape[1]:
        dev = np.sort(dev, axis=1)[:, :keep]
    return np.asarray(dev.mean(axis=1))


class KeystrokePipeline:
    factor = "keystroke"

    def __init__(
        self,
        encoder: KeystrokeEncoder,
        calibration: Calibration,
        scoring: Scoring,
        *,
        model_version: str,
        device: str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.encoder = encoder.to(self.device).eval()
        self.calibration = calibration
        self.scoring = scoring
        self.model_version = model_version
        self.min_enrol_samples = 20
        self.emb_dim = encoder.dim

    def decode(self, plaintext: bytes) -> object:
        return decode_typings(plaintext)

    def preprocess(self, decoded: object) -> np.ndarray:
        assert isinstance(decoded, list)
        return features(decoded)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 31] timings (s) -> [N, D + 31]: learned embedding, then the timings themselves."""
        with torch.inference_mode():
            x = x.to(self.device, torch.float32)
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
        emb, raw = self._split(embeddings[-self.scoring.recent :])
        arrays = {}
        for name, part, floor in (("emb", emb, 1e-3), ("raw", raw, 1e-4)):
            # median and median absolute deviation: a few botched typings do not move the template
            median = np.median(part, axis=0)
            arrays[f"{name}_median"] = median.astype(np.float32)
            mad = np.median(np.abs(part - median), axis=0)
            arrays[f"{name}_mad"] = np.maximum(mad, floor).astype(np.float32)
        return Template(self.factor, self.model_version, arrays, samples=len(embeddings))

    def distances(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """Per-typing distance to the template (lower = closer)."""
        emb, raw = self._split(embeddings)
        a = template.arrays
        s = self.scoring
        d_emb = scaled_manhattan(emb, a["emb_median"], a["emb_mad"])
        d_raw = scaled_manhattan(raw, a["raw_median"], a["raw_mad"], s.keep)
        return s.emb_weight * d_emb + s.raw_weight * d_raw

    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        if template.factor != self.factor:
            raise SampleError("template_wrong_factor", f"template is for {template.factor}")
        if template.model_version != self.model_version:
            raise SampleError(
                "template_model_mismatch",
                f"template built by {template.model_version}; re-enrol for {self.model_version}",
            )
        if len(embeddings) == 0:
            raise SampleError("keystroke_empty", "no typings to verify")
        d = self.distances(template, embeddings)
        # typings in one job are scored one by one; the job's distance is their mean
        distance = float(d.mean())
        llr = float(self.calibration.llr(distance))
        return Verification(
            score=float(self.calibration.score(distance)),
            distance=distance,
            llr=llr,
            per_sample=[float(v) for v in self.calibration.score(d)],
        )
