"""The contract every factor pipeline honours.

A pipeline is pure: bytes or arrays in, typed results out, device passed in.
Its life follows the model-server pattern: ``load`` once per process, then for
each batch of jobs ``decode -> preprocess`` (CPU, per job) and one ``embed``
call (model, batched over all jobs), then ``enrol`` or ``verify`` per job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch


class SampleError(ValueError):
    """The decoded plaintext holds no usable sample; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Template:
    """A user's enrolled profile for one factor (serialisable through the plaintext codec)."""

    factor: str
    model_version: str
    arrays: dict[str, np.ndarray]
    samples: int


@dataclass(frozen=True)
class Verification:
    """The outcome of comparing one job's samples with a template."""

    score: float  # calibrated probability in [0, 1] that the samples are genuine
    distance: float  # raw distance (lower = closer), before calibration
    llr: float  # natural-log likelihood ratio genuine/impostor, for fusion
    per_sample: list[float] = field(default_factory=list)


@runtime_checkable
class FactorPipeline(Protocol):
    factor: str
    model_version: str
    min_enrol_samples: int  # samples needed before a template can be built

    def decode(self, plaintext: bytes) -> object:
        """Plaintext frame -> factor-specific decoded sample set (raises PlaintextError/SampleError)."""
        ...

    def preprocess(self, decoded: object) -> np.ndarray:
        """Decoded samples -> model input array [n, ...] (float32), CPU only."""
        ...

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Model input batch [N, ...] on the pipeline's device -> embeddings [N, D]."""
        ...

    def enrol(self, embeddings: np.ndarray) -> Template:
        """All enrolment embeddings [n, D] of one user -> template."""
        ...

    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        """One job's embeddings [n, D] against a template -> calibrated verification."""
        ...


def check_template(template: Template, *, factor: str, model_version: str) -> None:
    """A template is only comparable with embeddings of the same factor and model version."""
    if template.factor != factor:
        raise SampleError("template_wrong_factor", f"template is for {template.factor}")
    if template.model_version != model_version:
        raise SampleError(
            "template_model_mismatch",
            f"template built by {template.model_version}; re-enrol for {model_version}",
        )
