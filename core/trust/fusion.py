"""Fusing factor scores into one trust score: a pure function over score rows.

log-odds = logit(prior) + sum over factors f of sum over f's recent scores i of
evidence(llr_i) * 2 ** (-age_i / half_life_f); probability = sigmoid(log-odds), where
evidence shrinks an llr towards 0 by `weak_llr` and clips it to [-llr_clip_negative, llr_clip].
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.settings import TrustSettings

Decision = Literal["genuine", "impostor", "unknown"]


@dataclass(frozen=True)
class ScoreSample:
    """One scored verify batch, as fusion sees it."""

    factor: str
    score: float
    llr: float  # natural-log likelihood ratio genuine / impostor
    at: datetime  # when the evidence counts from


def factor_half_lives() -> dict[str, float]:
    """Each installed factor's own half-life (``HALF_LIFE_S``), where it declares one."""
    from core import factors as registry

    return {f.name: f.half_life_s for f in registry.installed().values() if f.half_life_s}


@dataclass(frozen=True)
class FusionParams:
    prior_probability: float = 0.5
    half_life_s: Mapping[str, float] = field(default_factory=dict)
    default_half_life_s: float = 3600.0
    max_age_s: float = 86_400.0
    max_samples: int = 20
    llr_clip: float = 8.0
    llr_clip_negative: float | None = None  # the largest move down; None: llr_clip
    weak_llr: float = 0.0  # |llr| up to this is no evidence; larger ones shrink by it

    @classmethod
    def from_settings(cls, s: TrustSettings) -> FusionParams:
        return cls(
            s.prior_probability,
            factor_half_lives() | dict(s.half_life_s),
            s.default_half_life_s,
            s.max_age_s,
            s.max_samples,
            s.llr_clip,
            s.llr_clip_negative,
            s.weak_llr,
        )

    def half_life(self, factor: str) -> float:
        return float(self.half_life_s.get(factor, self.default_half_life_s))

    def evidence(self, llr: float) -> float:
        """How far one batch moves the log-odds: shrunk by `weak_llr`, then clipped."""
        if self.weak_llr:
            llr = math.copysign(max(0.0, abs(llr) - self.weak_llr), llr)
        low = self.llr_clip if self.llr_clip_negative is None else self.llr_clip_negative
        return max(-low, min(self.llr_clip, llr))


@dataclass(frozen=True)
class FactorTrust:
    factor: str
    latest_score: float
    age_s: float  # of the newest score used
    samples: int  # scores used
    half_life_s: float
    llr: float  # their decayed, clipped sum


@dataclass(frozen=True)
class TrustScore:
    prior_llr: float
    llr: float  # fused log-odds, prior included
    probability: float
    threshold: float
    decision: Decision
    factors: tuple[FactorTrust, ...]
    computed_at: datetime


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    # split by sign so neither branch overflows
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def fuse(
    samples: Iterable[ScoreSample], *, now: datetime, params: FusionParams, threshold: float
) -> TrustScore:
    """The trust at `now` from the given scores; decision 'unknown' when no score counts."""
    by_factor: dict[str, list[tuple[float, ScoreSample]]] = {}
    for s in samples:
        age = max(0.0, (now - s.at).total_seconds())  # a clock ahead of ours earns no bonus
        if age <= params.max_age_s:
            by_factor.setdefault(s.factor, []).append((age, s))
    factors = []
    for factor in sorted(by_factor):
        used = sorted(by_factor[factor], key=lambda a: a[0])[: params.max_samples]
        h = params.half_life(factor)
        llr = sum(params.evidence(s.llr) * 2.0 ** (-age / h) for age, s in used)
        age0, newest = used[0]
        factors.append(FactorTrust(factor, newest.score, age0, len(used), h, llr))
    prior = logit(params.prior_probability)
    total = prior + sum(f.llr for f in factors)
    p = sigmoid(total)
    decision: Decision = "unknown" if not factors else ("genuine" if p >= threshold else "impostor")
    return TrustScore(prior, total, p, threshold, decision, tuple(factors), now)
