"""Chimeric users for the trust evaluation: each factor's protocol, probe batches and their scores.

A chimeric user is one subject of each factor's data set (paired by the caller). Each
enrols per factor exactly as that factor's protocol of ``tacit eval`` (the subject's
``EvalSubject.enrol``) through the pipeline the workers use; its probe samples are the
protocol's genuine probes, in recorded order, cut into batches of a fixed size (a
partial last batch is dropped). Any user's batch can then be scored against any
user's template with the pipeline's ``verify``, as a worker scores a job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.base import FactorPipeline, Template, Verification, embed_numpy
from pipelines.evaluation.harness import PipelineScorer, Progress, factor_module
from pipelines.evaluation.protocol import EvalSubject
from pipelines.evaluation.run import load_model


def default_batch(factor: str) -> int:
    """Samples per upload in the trust evaluation: the data set's ``TRUST_BATCH``, else 1."""
    return int(getattr(factor_module(factor, "dataset"), "TRUST_BATCH", 1))


def subjects_of(factor: str, data: Path) -> list[EvalSubject]:
    """The factor's protocol subjects from its folder in the trust data layout."""
    return factor_module(factor, "dataset").load_protocol(data)


@dataclass
class FactorScores:
    """One factor's templates and probe-batch embeddings of every chimeric user."""

    factor: str
    pipeline: FactorPipeline
    templates: list[Template]
    batches: list[list[np.ndarray]]  # per user: embeddings [batch, D] of each probe batch
    model_version: str

    def verify(self, owner: int, source: int, batch: int) -> Verification:
        """The source user's batch against the owner's template."""
        return self.pipeline.verify(self.templates[owner], self.batches[source][batch])


def prepare_factor(
    factor: str,
    subjects: Sequence[EvalSubject],
    *,
    batch_size: int,
    weights: Path | None = None,
    device: str = "cpu",
) -> FactorScores:
    """Templates from the protocol's enrolment and embedded probe batches, per user in order."""
    if batch_size < 1:
        raise ValueError(f"{factor} batch size must be at least 1")
    scorer: PipelineScorer = load_model(factor, weights=weights, device=device)
    templates, batches = [], []
    for s in subjects:
        templates.append(scorer.pipeline.enrol(embed_numpy(scorer.pipeline, s.enrol)))
        probes = np.concatenate([x for _, x in s.genuine], axis=0).astype(np.float32, copy=False)
        emb = embed_numpy(scorer.pipeline, probes) if len(probes) else probes
        full = len(emb) // batch_size
        batches.append([emb[k * batch_size : (k + 1) * batch_size] for k in range(full)])
    return FactorScores(factor, scorer.pipeline, templates, batches, scorer.pipeline.model_version)


def load_chimeric(
    data: Path,
    pairs: Sequence[Mapping[str, str]],
    subjects: Mapping[str, Sequence[EvalSubject]],
    *,
    batch_size: Mapping[str, int],
    weights: Mapping[str, Path] | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, FactorScores]:
    """Every factor prepared for the chimeric users `pairs` (pairs[i][factor] = subject id)."""
    out = {}
    for factor, protocol in subjects.items():
        by_id = {s.subject: s for s in protocol}
        chosen = [by_id[p[factor]] for p in pairs]
        if progress:
            progress(f"{factor}: enrolling {len(chosen)} users and embedding their probes")
        out[factor] = prepare_factor(
            factor,
            chosen,
            batch_size=batch_size[factor],
            weights=(weights or {}).get(factor),
            device=device,
        )
    return out
