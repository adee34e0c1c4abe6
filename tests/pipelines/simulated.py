"""Simulated people enrolled and verified through a whole pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch

from pipelines.base import FactorPipeline, Template, Verification

P = TypeVar("P")
Capture = Callable[[P, np.random.Generator, int], bytes]


def embed(p: FactorPipeline, plaintext: bytes) -> np.ndarray:
    """One plaintext through decode, preprocess and embed."""
    return p.embed(torch.from_numpy(p.preprocess(p.decode(plaintext)))).numpy()


def genuine_and_impostor(
    p: FactorPipeline,
    people: Sequence[P],
    capture: Capture[P],
    rng: np.random.Generator,
    *,
    enrol: tuple[int, int],
    probe: int,
) -> tuple[list[Template], list[Verification], list[Verification]]:
    """Each person enrolled with `enrol` = (captures, samples each), then verified with a
    capture of `probe` samples of their own and one of the next person's."""
    captures, samples = enrol
    templates = [
        p.enrol(np.concatenate([embed(p, capture(q, rng, samples)) for _ in range(captures)]))
        for q in people
    ]
    n = len(people)
    genuine = [p.verify(templates[k], embed(p, capture(people[k], rng, probe))) for k in range(n)]
    impostor = [
        p.verify(templates[k], embed(p, capture(people[(k + 1) % n], rng, probe))) for k in range(n)
    ]
    return templates, genuine, impostor
