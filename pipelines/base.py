"""The contract every factor pipeline honours.

A pipeline is pure: bytes or arrays in, typed results out, device passed in.
Its life follows the model-server pattern: ``load`` once per process, then for
each batch of jobs ``decode -> preprocess`` (CPU, per job) and one ``embed``
call (model, batched over all jobs), then ``enrol`` or ``verify`` per job.

``FactorPipeline`` is the contract a pool and a plug-in rely on. ``TorchPipeline``
is the base the built-in factors share: its ``embed`` is the one place inference
happens (``inference_mode``, the move to the device), around the subclass's
``forward``. ``DistancePipeline`` adds the verification of factors that score a job
by per-sample distances to the template.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from pipelines.codec import CodedError
from pipelines.evaluation.calibration import Calibration, posterior


class SampleError(CodedError):
    """The decoded plaintext holds no usable sample; `code` is machine-readable."""


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


D = TypeVar("D")  # a factor's decoded sample set: what `decode` returns and `preprocess` takes


@runtime_checkable
class FactorPipeline(Protocol[D]):
    factor: str
    model_version: str
    min_enrol_samples: int  # samples needed before a template can be built

    def decode(self, plaintext: bytes) -> D:
        """Plaintext frame -> factor-specific decoded sample set (raises PlaintextError/SampleError)."""
        ...

    def preprocess(self, decoded: D) -> np.ndarray:
        """Decoded samples -> model input array [n, ...] (float32), CPU only."""
        ...

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Model input batch [N, ...] (any device) -> embeddings [N, D] on the pipeline's device,
        computed under ``torch.inference_mode``."""
        ...

    def enrol(self, embeddings: np.ndarray) -> Template:
        """All enrolment embeddings [n, D] of one user -> template."""
        ...

    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        """One job's embeddings [n, D] against a template -> calibrated verification."""
        ...


class TorchPipeline(ABC, Generic[D]):
    """A FactorPipeline whose model is a torch module on `device`.

    Subclasses give ``decode``, ``preprocess``, ``forward`` (the model call, tensor in,
    tensor out), ``enrol`` and ``verify``; ``embed`` wraps ``forward`` with what every
    model call needs, so callers (the pool, evaluation, export) never do it themselves.
    """

    factor: str
    min_enrol_samples: int

    def __init__(self, *, model_version: str, device: str) -> None:
        self.model_version = model_version
        self.device = torch.device(device)

    @abstractmethod
    def decode(self, plaintext: bytes) -> D:
        """Plaintext frame -> decoded sample set (raises PlaintextError/SampleError)."""

    @abstractmethod
    def preprocess(self, decoded: D) -> np.ndarray:
        """Decoded samples -> model input array [n, ...] (float32), CPU only."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Model input batch [N, ...], float32 on `device` -> embeddings [N, D]."""

    @abstractmethod
    def enrol(self, embeddings: np.ndarray) -> Template:
        """All enrolment embeddings [n, D] of one user -> template."""

    @abstractmethod
    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        """One job's embeddings [n, D] against a template -> calibrated verification."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Model input batch [N, ...] on any device -> embeddings [N, D] on `device`."""
        with torch.inference_mode():
            return self.forward(x.to(self.device, torch.float32, non_blocking=x.is_pinned()))

    def embed_numpy(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """Numpy model inputs -> numpy embeddings, `batch` rows per model call."""
        return embed_numpy(self, x, batch=batch)


E = TypeVar("E", bound=torch.nn.Module)  # a DistancePipeline's encoder


class DistancePipeline(TorchPipeline[D], Generic[D, E]):
    """A TorchPipeline with an `encoder` that verifies a job by its per-sample distances.

    Subclasses give ``distances`` (lower = closer) and `samples`, what a sample is called
    in messages; the job's llr adds the samples' llrs with the fitted correlation discount.
    """

    samples: str  # "frames", "typings": the empty job's message

    def __init__(
        self, encoder: E, calibration: Calibration, *, model_version: str, device: str
    ) -> None:
        super().__init__(model_version=model_version, device=device)
        self.encoder: E = encoder.to(self.device).eval()
        self.calibration = calibration

    @abstractmethod
    def distances(self, template: Template, embeddings: np.ndarray) -> np.ndarray:
        """Per-sample distance of embeddings [n, D] to the template (lower = closer)."""

    def job_distance(self, distances: np.ndarray) -> float:
        """The job's distance shown in its verification: the mean of its samples'."""
        return float(distances.mean())

    def verify(self, template: Template, embeddings: np.ndarray) -> Verification:
        check_template(template, factor=self.factor, model_version=self.model_version)
        if len(embeddings) == 0:
            raise SampleError(f"{self.factor}_empty", f"no {self.samples} to verify")
        d = self.distances(template, embeddings)
        llr = self.calibration.job_llr(d)
        return Verification(
            score=float(posterior(llr)),
            distance=self.job_distance(d),
            llr=llr,
            per_sample=[float(v) for v in self.calibration.score(d)],
        )


def embed_numpy(pipeline: FactorPipeline[D], x: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Any pipeline's ``embed`` on numpy rows, `batch` at a time (evaluation, enrolment, checks).

    An empty input still makes one (empty) model call, so the result has the model's width.
    """
    parts = [
        pipeline.embed(torch.from_numpy(np.ascontiguousarray(x[i : i + batch], dtype=np.float32)))
        .float()
        .cpu()
        .numpy()
        for i in range(0, max(len(x), 1), batch)
    ]
    return np.concatenate(parts, axis=0)


def check_template(template: Template, *, factor: str, model_version: str) -> None:
    """A template is only comparable with embeddings of the same factor and model version."""
    if template.factor != factor:
        raise SampleError("template_wrong_factor", f"template is for {template.factor}")
    if template.model_version != model_version:
        raise SampleError(
            "template_model_mismatch",
            f"template built by {template.model_version}; re-enrol for {model_version}",
        )
