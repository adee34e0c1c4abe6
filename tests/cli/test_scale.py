"""`tacit scale`: per-factor backlog, load and KEDA's replica rule, from real Redis and Postgres."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import redis

from core.scaling import PoolScaling, pool_scaling
from tests.isolated import db, services, settings  # noqa: F401 - this module's own database and queues
from tests.ops.conftest import make_job

SCALE = (
    "import sys; from cli import scale; import argparse; p = argparse.ArgumentParser(); "
    "s = p.add_subparsers(); scale.register(s); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))"
)


def test_recommended_replicas_follow_kedas_rule() -> None:
    from cli.scale import recommended_replicas

    pool = PoolScaling(list_length=100, activation_list_length=5, min_replicas=1, max_replicas=4)
    assert [recommended_replicas(d, pool) for d in (0, 1, 100, 101, 350, 10_000)] == [
        1,
        1,
        1,
        2,
        4,
        4,
    ]
    sleepy = PoolScaling(list_length=100, activation_list_length=5, min_replicas=0, max_replicas=4)
    # KEDA activates when the list is longer than activationListLength
    assert [recommended_replicas(d, sleepy) for d in (0, 4, 5, 6, 250)] == [0, 0, 0, 1, 3]


def test_age_rule_wakes_a_sleeping_pool_and_grows_it_with_the_wait() -> None:
    from core.scaling import desired_replicas

    pool = PoolScaling(
        list_length=100,
        activation_list_length=50,
        min_replicas=0,
        max_replicas=6,
        latency_objective_s=120.0,
        activation_age_s=30.0,
        jobs_per_s_target=100.0,
    )
    # a few jobs waiting a short while: the pool sleeps
    assert desired_replicas(3, 20.0, 0, pool) == 0
    # the same few jobs past the activation age: one replica wakes
    assert desired_replicas(3, 31.0, 0, pool) == 1
    # two replicas whose oldest job waits 90 s against a 60 s target: ceil(2 * 90 / 60) = 3
    assert desired_replicas(3, 90.0, 2, pool) == 3
    # the length rule wins when it asks for more, and max_replicas caps both
    assert desired_replicas(450, 1.0, 1, pool) == 5
    assert desired_replicas(3, 600.0, 4, pool) == 6
    # without the age rule only the length counts
    assert desired_replicas(3, 600.0, 4, pool, use_age=False) == 0
    # but a pool that is scoring stays awake, sized by its rate: ceil(250 / 100)
    assert desired_replicas(0, 0.0, 1, pool, jobs_per_s=0.5, use_age=False) == 1
    assert desired_replicas(0, 0.0, 1, pool, jobs_per_s=250.0) == 3


def test_scale_reports_each_factor_and_emits_the_same_keda_figures(settings, db, tenant, tmp_path):  # type: ignore[no-untyped-def]
    # given 300 keystroke messages waiting on a queue of this test, two running and one finished gait job
    queue = f"score.keystroke.scale-{os.getpid()}"
    client = redis.Redis.from_url(settings.redis_url)
    client.delete(queue)
    client.rpush(queue, *[b"m"] * 300)
    running = db.execute(
        "SELECT count(*) AS n FROM jobs WHERE status = 'running' AND factor = 'gait'"
    ).fetchone()["n"]
    for _ in range(2):
        make_job(db, tenant, factor="gait", status="running")
    make_job(db, tenant, factor="gait", status="done", finished_at=datetime.now(UTC))
    # and a face job waiting 1000 s, older than anything else queued
    waiting = make_job(
        db, tenant, factor="face", created_at=datetime.now(UTC) - timedelta(seconds=1000)
    )
    env = dict(
        os.environ,
        TACIT_QUEUES__KEYSTROKE=queue,
        TACIT_SCALING__KEYSTROKE__LIST_LENGTH="100",
        TACIT_SCALING__KEYSTROKE__MAX_REPLICAS="3",
    )
    # when `tacit scale --json --emit-keda DIR` runs
    out = subprocess.run(
        [sys.executable, "-c", SCALE, "scale", "--json", "--emit-keda", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    client.delete(queue)
    db.execute("UPDATE jobs SET status = 'done' WHERE id = %s", (waiting,))
    # then the last line is the JSON summary with KEDA's rule over the overridden figures
    assert out.returncode == 0, out.stderr
    factors = json.loads(out.stdout.strip().splitlines()[-1])["factors"]
    assert set(factors) == {"keystroke", "gait", "face"}
    assert factors["keystroke"]["depth"] == 300
    assert factors["keystroke"]["recommended_replicas"] == 3  # ceil(300 / 100), within max 3
    assert factors["gait"]["in_flight"] == running + 2
    assert factors["gait"]["per_s"] > 0
    # and face reports its wait, its objective and both rules: ceil(max(current, 1) * age / target)
    face, figures = factors["face"], pool_scaling()["face"]
    assert (
        1000 <= face["oldest_age_s"] < 1030 and face["objective_s"] == figures.latency_objective_s
    )
    assert face["replicas_by_length"] == 0
    expected = math.ceil(
        max(face["current_replicas"], 1) * face["oldest_age_s"] / figures.age_target_s
    )
    assert face["replicas_by_age"] == expected
    assert face["recommended_replicas"] == min(figures.max_replicas, expected)
    # and the ScaledObject it wrote uses the same queue and target
    written = (tmp_path / "keda-keystroke.yaml").read_text()
    assert (
        f"listName: {queue}" in written
        and "listLength: '100'" in written
        and "maxReplicaCount: 3" in written
    )


def test_scale_fails_in_one_line_without_a_running_stack(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = subprocess.run(
        [sys.executable, "-c", SCALE, "scale", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"tacit: error: no running `tacit up` in {tmp_path}"
