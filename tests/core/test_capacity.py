"""The capacity model: its queueing against the M/M/c closed form, and its scalers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.capacity import Pool, default_profile, erlang_c, plan_day, simulate_pool, summary_json
from core.scaling import PoolScaling, pool_scaling


def test_constant_rate_pool_matches_erlang_c() -> None:
    # given Poisson arrivals at 8 jobs/s into 10 always-on replicas of 1 job/s each (rho = 0.8)
    lam, mu, c, dt = 8.0, 1.0, 10, 0.02
    arrivals = np.random.default_rng(7).poisson(lam * dt, int(10_000 / dt))
    pool = Pool(
        mu=mu,
        cold_start_s=0.0,
        service_latency_s=0.0,
        scaling=PoolScaling(
            list_length=1, activation_list_length=0, min_replicas=c, max_replicas=c
        ),
    )
    # when the simulator runs it
    result = simulate_pool(arrivals, pool, dt=dt, policy="always-on", fixed_replicas=c)
    # then the probability of waiting is Erlang C and the mean time in the system is C / (c mu - lam) + 1 / mu
    wait = erlang_c(c, lam / mu)
    assert wait == pytest.approx(0.4092, abs=1e-3)  # the textbook figure for c = 10, a = 8
    assert result.wait_probability == pytest.approx(wait, rel=0.06)
    assert result.mean_s == pytest.approx(wait / (c * mu - lam) + 1 / mu, rel=0.03)
    # and nothing is lost: every job that arrived was scored
    assert result.scored == result.jobs == int(arrivals.sum())


def test_scale_to_zero_sleeps_between_bursts_and_pays_the_cold_start() -> None:
    # given a quiet pool (nothing for 10 min), a burst of 2000 jobs, then quiet again
    dt = 1.0
    arrivals = np.zeros(1800, dtype=int)
    arrivals[600:620] = 100
    scaling = dataclasses.replace(
        pool_scaling()["gait"], cooldown_s=120, polling_s=15, max_replicas=4
    )
    pool = Pool(mu=50.0, cold_start_s=30.0, service_latency_s=0.1, scaling=scaling)
    # when it runs with scale to zero
    result = simulate_pool(arrivals, pool, dt=dt, policy="zero", sample_every_s=1.0)
    replicas = dict(result.replicas)
    # then it sleeps before the burst, wakes for it, and is back at zero after the cooldown
    assert replicas[599.0] == 0
    assert max(replicas.values()) >= 2
    assert replicas[1799.0] == 0
    assert result.scored == result.jobs == 2000
    # and the first jobs waited for the cold start (30 s) at least
    assert result.p99_s > 30
    # while paying far less than a pool kept on all the time
    always = simulate_pool(arrivals, pool, dt=dt, policy="always-on", fixed_replicas=4)
    assert result.replica_seconds < always.replica_seconds / 3


def test_age_policy_wakes_a_trickle_that_the_list_rule_leaves_waiting() -> None:
    # given 5 jobs, fewer than the list activation (16), then nothing
    arrivals = np.zeros(2000, dtype=int)
    arrivals[10] = 5
    pool = Pool(mu=50.0, cold_start_s=20.0, service_latency_s=0.1, scaling=pool_scaling()["gait"])
    # when the age rule is on, they are scored after the activation age (60 s) plus the cold start
    aged = simulate_pool(arrivals, pool, dt=1.0, policy="age", drain=False)
    assert aged.scored == 5 and 60 < aged.p99_s < 60 + 20 + 2 * pool_scaling()["gait"].polling_s
    # and on the list rule alone they are never scored
    listed = simulate_pool(arrivals, pool, dt=1.0, policy="zero", drain=False)
    assert listed.scored == 0


def test_plan_day_reports_every_tier_in_the_documented_json() -> None:
    plan = plan_day(2_000, default_profile(), policy="age", dt=5.0)
    out = summary_json(plan)
    assert set(out) == {"users", "policy", "factors", "api_processes", "postgres_writes_per_s"}
    assert out["users"] == 2_000 and out["policy"] == "age"
    for figures in out["factors"].values():
        assert set(figures) == {"replica_hours", "p99_s", "max_backlog"}
        assert 0 < figures["replica_hours"] <= 24 * 8
    assert out["api_processes"] >= 1 and out["postgres_writes_per_s"] > 0
