"""Run a factor's evaluation protocol: every subject's template against genuine and impostor probes."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from core import factors as registry
from pipelines.base import FactorPipeline, Template, embed_numpy
from pipelines.evaluation.protocol import EvalSubject, Scorer

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Comparison:
    """One probe against one template; `subject` owns the probe, `claimed` owns the template."""

    subject: str
    claimed: str
    probe: str
    genuine: bool
    score: float


def factor_module(factor: str, module: str) -> ModuleType:
    """Import ``pipelines.<factor>.<module>`` (every factor package follows the same layout)."""
    return registry.get(factor).submodule(module)


def _stack(probes: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([p for _, p in probes], axis=0).astype(np.float32, copy=False)


def run_protocol(
    subjects: list[EvalSubject], scorer: Scorer, progress: Progress | None = None
) -> list[Comparison]:
    """Score every subject's genuine probes and every other subject's impostor probes."""
    if len(subjects) < 2:
        raise ValueError("the protocol needs at least two subjects")
    prepare = getattr(scorer, "prepare", None)
    if callable(
        prepare
    ):  # e.g. eigenfaces: a face space from every subject's enrolment (never probes)
        prepare([s.enrol for s in subjects])
    out: list[Comparison] = []
    for n, s in enumerate(subjects, 1):
        state = scorer.fit(s.enrol)
        probes = [(s.subject, pid, x, True) for pid, x in s.genuine]
        probes += [
            (o.subject, pid, x, False)
            for o in subjects
            if o.subject != s.subject
            for pid, x in o.impostor
        ]
        scores = scorer.score(state, _stack([(pid, x) for _, pid, x, _ in probes]))
        for (owner, pid, _, genuine), sc in zip(probes, scores, strict=True):
            out.append(Comparison(owner, s.subject, pid, genuine, float(sc)))
        if progress and (n % 5 == 0 or n == len(subjects)):
            progress(f"{scorer.name}: {n}/{len(subjects)} subjects scored")
    return out


ProbeScores = Callable[[Template, np.ndarray], np.ndarray]


class PipelineScorer:
    """A factor pipeline seen as a Scorer: enrol on embeddings, then one score per probe row.

    By default each probe row is verified alone and scores its calibrated probability;
    `score_probes` (template, probe embeddings) -> scores replaces that (gait scores the
    raw similarity of each window: pipelines/gait/evaluate.py).
    """

    def __init__(
        self, pipeline: FactorPipeline[Any], *, score_probes: ProbeScores | None = None
    ) -> None:
        self.pipeline = pipeline
        self.name = pipeline.model_version
        self.score_probes = score_probes or self._verify_each

    def _verify_each(self, template: Template, emb: np.ndarray) -> np.ndarray:
        return np.array(
            [self.pipeline.verify(template, emb[i : i + 1]).score for i in range(len(emb))]
        )

    def fit(self, enrol: np.ndarray) -> object:
        return self.pipeline.enrol(embed_numpy(self.pipeline, enrol))

    def score(self, state: object, probes: np.ndarray) -> np.ndarray:
        assert isinstance(state, Template)
        return self.score_probes(state, embed_numpy(self.pipeline, probes))


def write_scores(path: Path, comparisons: list[Comparison]) -> None:
    """One CSV row per comparison: subject,claimed,probe,genuine,score."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject", "claimed", "probe", "genuine", "score"])
        for c in comparisons:
            w.writerow([c.subject, c.claimed, c.probe, int(c.genuine), repr(c.score)])
