"""Trust fusion: hand-computed cases for the pure function in core/trust/fusion.py."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from core.trust.fusion import FusionParams, ScoreSample, fuse

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PARAMS = FusionParams(
    prior_probability=0.5,
    half_life_s={"keystroke": 1800.0, "gait": 3600.0},
    default_half_life_s=600.0,
    max_age_s=86_400.0,
    max_samples=20,
    llr_clip=8.0,
)


def at(seconds_ago: float) -> datetime:
    return NOW - timedelta(seconds=seconds_ago)


def test_no_scores_gives_the_prior_and_no_decision() -> None:
    t = fuse([], now=NOW, params=PARAMS, threshold=0.5)
    assert t.llr == 0.0 and t.probability == 0.5
    assert t.decision == "unknown" and t.factors == ()


def test_one_fresh_score_moves_the_log_odds_by_its_llr() -> None:
    # given llr 2 just now, prior 0.5: log-odds 0 + 2, p = 1 / (1 + e^-2) = 0.880797
    t = fuse([ScoreSample("keystroke", 0.9, 2.0, at(0))], now=NOW, params=PARAMS, threshold=0.5)
    assert t.llr == pytest.approx(2.0)
    assert t.probability == pytest.approx(0.880797, abs=1e-6)
    assert t.decision == "genuine"
    (f,) = t.factors
    assert (f.factor, f.latest_score, f.age_s, f.samples, f.llr) == (
        "keystroke",
        0.9,
        0.0,
        1,
        pytest.approx(2.0),
    )


def test_a_score_one_half_life_old_counts_half() -> None:
    # keystroke half-life 1800 s: llr 2 at 1800 s counts 1; p = 0.731059
    t = fuse([ScoreSample("keystroke", 0.9, 2.0, at(1800))], now=NOW, params=PARAMS, threshold=0.5)
    assert t.factors[0].llr == pytest.approx(1.0)
    assert t.probability == pytest.approx(0.731059, abs=1e-6)
    assert t.factors[0].age_s == 1800


def test_two_factors_and_a_prior_sum_in_log_odds() -> None:
    # prior 0.2 -> ln(0.25) = -1.386294; keystroke +2 (fresh); gait -1 one gait half-life ago -> -0.5
    # log-odds = -1.386294 + 2 - 0.5 = 0.113706; p = sigmoid(0.113706) = 0.528396
    params = FusionParams(0.2, {"keystroke": 1800.0, "gait": 3600.0})
    samples = [ScoreSample("keystroke", 0.9, 2.0, at(0)), ScoreSample("gait", 0.3, -1.0, at(3600))]
    t = fuse(samples, now=NOW, params=params, threshold=0.5)
    assert t.prior_llr == pytest.approx(math.log(0.25))
    assert t.llr == pytest.approx(0.113706, abs=1e-6)
    assert t.probability == pytest.approx(0.528396, abs=1e-6)
    assert t.decision == "genuine"
    assert [f.factor for f in t.factors] == ["gait", "keystroke"]
    # then the same evidence at a stricter operating point is an impostor
    assert fuse(samples, now=NOW, params=params, threshold=0.6).decision == "impostor"


def test_each_llr_is_clipped() -> None:
    t = fuse([ScoreSample("face", 1.0, 50.0, at(0))], now=NOW, params=PARAMS, threshold=0.5)
    assert t.llr == pytest.approx(8.0)


def test_only_the_newest_samples_per_factor_count() -> None:
    # given three keystroke scores and max_samples 2: the oldest (llr 5) is dropped
    params = FusionParams(0.5, {"keystroke": 1800.0}, max_samples=2)
    samples = [
        ScoreSample("keystroke", 0.7, 1.0, at(0)),
        ScoreSample("keystroke", 0.8, 5.0, at(3600)),
        ScoreSample("keystroke", 0.6, 1.0, at(1800)),
    ]
    t = fuse(samples, now=NOW, params=params, threshold=0.5)
    (f,) = t.factors
    assert f.samples == 2 and f.latest_score == 0.7
    assert f.llr == pytest.approx(1.0 + 0.5)


def test_scores_older_than_max_age_are_ignored_and_future_ones_are_not_fresher_than_now() -> None:
    params = FusionParams(0.5, {}, default_half_life_s=600.0, max_age_s=3600.0)
    samples = [
        ScoreSample("face", 0.9, 3.0, at(7200)),
        ScoreSample("face", 0.9, 1.0, NOW + timedelta(hours=1)),
    ]
    t = fuse(samples, now=NOW, params=params, threshold=0.5)
    (f,) = t.factors
    assert f.samples == 1 and f.age_s == 0.0 and f.llr == pytest.approx(1.0)


def test_fused_probability_stays_finite_at_extremes() -> None:
    samples = [ScoreSample(f, 0.0, -8.0, at(0)) for f in ("keystroke", "gait", "face")] * 20
    t = fuse(samples, now=NOW, params=PARAMS, threshold=0.5)
    assert 0.0 <= t.probability < 1e-50 and t.decision == "impostor"


def test_weak_evidence_shrinks_and_the_downward_clip_can_differ() -> None:
    # given up moves clipped at 2, down moves at 6, and |llr| <= 0.5 counting as nothing
    params = FusionParams(
        0.5, {}, default_half_life_s=1e12, llr_clip=2.0, llr_clip_negative=6.0, weak_llr=0.5
    )
    # then +0.4 moves nothing, +1.5 moves 1.0, +9 moves 2, -9 moves -6
    assert [params.evidence(x) for x in (0.4, -0.4, 1.5, 9.0, -9.0)] == [0.0, 0.0, 1.0, 2.0, -6.0]
    samples = [ScoreSample("face", 0.5, llr, at(0)) for llr in (0.3, 9.0, -9.0)]
    assert fuse(samples, now=NOW, params=params, threshold=0.5).llr == pytest.approx(-4.0)
