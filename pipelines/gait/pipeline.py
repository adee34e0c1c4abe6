"""The gait factor pipeline: plaintext motion -> windows -> embeddings -> calibrated score."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from pipelines.base import SampleError, Template, Verification
from pipelines.codec import Plaintext, PlaintextError
from pipelines.codec import decode as decode_frame
from pipelines.gait.model import GaitEncoder
from pipelines.gait.signal import GaitLimits, GaitRecording, recording_from_arrays, windows

FACTOR = "gait"
SCHEMA = 1
LLR_LIMIT = 30.0  # keeps sigmoid(llr) strictly inside (0, 1) in float64


@dataclass(frozen=True)
class Calibration:
    """Per-window similarity -> log-likelihood ratio, and how windows fuse.

    ``llr = slope * similarity + intercept`` per window (fitted with balanced classes,
    so it is a likelihood ratio, not a posterior). Windows of one walk are correlated,
    so a batch's llr is the mean window llr times an effective count
    ``n / (1 + (n - 1) * rho)`` instead of the plain sum.
    """

    slope: float
    intercept: float
    rho: float
    top_k: int

    @classmethod
    def from_json(cls, path: Path) -> Calibration:
        raw = json.loads(path.read_text())
        return cls(
            float(raw["slope"]), float(raw["intercept"]), float(raw["rho"]), int(raw["top_k"])
        )

    def window_llr(self, similarity: np.ndarray) -> np.ndarray:
        return np.clip(self.slope * similarity + self.intercept, -LLR_LIMIT, LLR_LIMIT)

    def fused_llr(self, window_llr: np.ndarray) -> float:
        n = window_llr.size
        n_eff = n / (1.0 + (n - 1) * self.rho)
        return float(np.clip(window_llr.mean() * n_eff, -LLR_LIMIT, LLR_LIMIT))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def window_similarity(enrolled: np.ndarray, probes: np.ndarray, top_k: int) -> np.ndarray:
    """Cosine similarity of each probe to its `top_k` nearest enrolment embeddings, averaged."""
    sims = probes.astype(np.float64) @ enrolled.astype(np.float64).T  # unit vectors: cosine
    k = max(1, min(top_k, sims.shape[1]))
    nearest = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return nearest.mean(1)


class GaitPipeline:
    """FactorPipeline for gait (see pipelines/base.py and docs/plaintext.md "Gait")."""

    factor = FACTOR
    min_enrol_samples = 20  # windows: about 27 s of walking

    def __init__(
        self, model: GaitEncoder, calibration: Calibration, model_version: str, device: str
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.calibration = calibration
        self.model_version = model_version
        self.limits = GaitLimits()

    def decode(self, plaintext: bytes) -> GaitRecording:
        """Plaintext frame -> validated 50 Hz recording (acc in g, gyro in rad/s)."""
        frame: Plaintext = decode_frame(plaintext, self.limits.frame_limits())
        if frame.factor != FACTOR:
            raise PlaintextError("plaintext_wrong_factor", f"factor {frame.factor!r}, not gait")
        if frame.schema != SCHEMA:
            raise PlaintextError("plaintext_bad_schema", f"gait schema {frame.schema} unknown")
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

    def preprocess(self, decoded: object) -> np.ndarray:
        """Recording -> model inputs [n_windows, 6, 128] float32."""
        if not isinstance(decoded, GaitRecording):
            raise TypeError("gait preprocess expects a GaitRecording")
        return windows(decoded, self.limits.max_windows)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Windows [N, 6, 128] on this pipeline's device -> unit embeddings [N, D]."""
        with torch.inference_mode():
            return self.model(x.to(self.device, torch.float32))

    def embed_numpy(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        """Convenience for evaluation and enrolment: numpy windows -> numpy embeddings."""
        parts = [
            self.embed(torch.from_numpy(x[i : i + batch])).float().cpu().numpy()
            for i in range(0, len(x), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.model.dim), dtype=np.float32)

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
        if template.factor != self.factor or template.model_version != self.model_version:
            raise SampleError(
                "template_model_mismatch",
                f"template from {template.model_version}; pipeline is {self.model_version}",
            )
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or e.shape[0] == 0:
            raise SampleError("gait_no_windows", "no embeddings to verify")
        return window_similarity(template.arrays["embeddings"], e, self.calibration.top_k)

    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        """One batch's window embeddings vs a template -> fused calibrated verification."""
        sims = self.window_scores(template, embeddings)
        llr = self.calibration.window_llr(sims)
        fused = self.calibration.fused_llr(llr)
        return Verification(
            score=1.0 / (1.0 + math.exp(-fused)),
            distance=float(1.0 - sims.mean()),
            llr=fused,
            per_sample=[float(p) for p in _sigmoid(llr)],
        )


class PipelineScorer:
    """Adapts a GaitPipeline to the evaluation Scorer protocol (score per probe window)."""

    def __init__(self, pipeline: GaitPipeline) -> None:
        self.pipeline = pipeline
        self.name = pipeline.model_version

    def fit(self, enrol: np.ndarray) -> object:
        return self.pipeline.enrol(self.pipeline.embed_numpy(enrol))

    def score(self, state: object, probes: np.ndarray) -> np.ndarray:
        assert isinstance(state, Template)
        return self.pipeline.window_scores(state, self.pipeline.embed_numpy(probes))


def load_pipeline_from(weights_dir: Path, device: str = "cpu") -> GaitPipeline:
    """Build the pipeline from ``model.safetensors`` and ``calibration.json`` in `weights_dir`."""
    meta = json.loads((weights_dir / "calibration.json").read_text())
    model = GaitEncoder(width=int(meta.get("width", 32)), dim=int(meta.get("embedding_dim", 128)))
    model.load_state_dict(load_file(str(weights_dir / "model.safetensors")))
    calibration = Calibration.from_json(weights_dir / "calibration.json")
    if not math.isfinite(calibration.slope):
        raise ValueError("calibration slope is not finite")
    return GaitPipeline(model, calibration, str(meta["model_version"]), device)
