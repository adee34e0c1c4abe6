"""Job-level fusion of per-sample evidence, and subject folds for held-out evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.evaluation.calibration import Calibration, fit_calibration, fit_job_fusion
from pipelines.evaluation.crossval import folds


def test_job_llr_adds_independent_samples_and_counts_correlated_ones_once() -> None:
    # given a calibration with llr = 2 - distance and four samples at distance 1 (llr 1 each)
    d = np.ones(4)
    # when / then: rho 0 adds the four llrs, rho 1 keeps one sample's worth, 0.5 lies between
    assert Calibration(2.0, -1.0, rho=0.0).job_llr(d) == pytest.approx(4.0)
    assert Calibration(2.0, -1.0, rho=1.0).job_llr(d) == pytest.approx(1.0)
    assert Calibration(2.0, -1.0, rho=0.5).job_llr(d) == pytest.approx(4.0 / 2.5)
    assert Calibration(2.0, -1.0, rho=0.0).job_llr(np.array([1.0])) == pytest.approx(1.0)


def test_independent_samples_fit_a_low_rho_and_repeated_samples_a_high_one() -> None:
    # given per-sample distances that separate the classes only a little
    rng = np.random.default_rng(0)
    g = rng.normal(1.0, 1.0, (200, 8))
    i = rng.normal(2.0, 1.0, (200, 8))
    base = fit_calibration(g.ravel(), i.ravel())
    # when the job fusion is fitted on independent samples, then on jobs repeating one sample
    independent = fit_job_fusion(base, list(g), list(i))
    repeated = fit_job_fusion(
        base, [np.repeat(r[:1], 8) for r in g], [np.repeat(r[:1], 8) for r in i]
    )
    # then independent evidence adds up (rho near 0), a repeated sample counts once (rho near 1)
    assert independent.rho < 0.2
    assert repeated.rho > 0.6
    assert (independent.slope, independent.intercept) == (base.slope, base.intercept)


def test_rho_round_trips_through_calibration_json_and_defaults_to_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "calibration.json"
    Calibration(1.0, -2.0, "d", rho=0.3).save(path, model_version="x")
    assert Calibration.load(path).rho == 0.3
    path.write_text(json.dumps({"intercept": 1.0, "slope": -2.0}))
    assert Calibration.load(path).rho == 1.0


def test_folds_are_round_robin_and_need_two_subjects_each() -> None:
    assert folds(["a", "b", "c", "d", "e"], 2) == [["a", "c", "e"], ["b", "d"]]
    assert folds([f"s{k}" for k in range(10)], 5)[1] == ["s1", "s6"]
    with pytest.raises(ValueError):
        folds(["a", "b", "c"], 2)
