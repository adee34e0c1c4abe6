"""`tacit up --autoscale`: a factor pool goes 0 -> N -> 0 on a burst with real processes,
and nothing is lost when the last replica goes, even while it holds jobs."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cli.autoscale import Autoscaler
from cli.stack import KEYRING_ENV, Stack, free_port
from core.scaling import PoolScaling
from tests.isolated import db, services, settings  # noqa: F401 - this module's own database and queues

pytestmark = pytest.mark.integration

FACTOR = "keystroke"
FIGURES = PoolScaling(
    list_length=10,
    activation_list_length=0,
    min_replicas=0,
    max_replicas=2,
    cooldown_s=4,
    polling_s=1,
    latency_objective_s=20.0,
    activation_age_s=1.0,
    jobs_per_s_target=50.0,
    rate_window_s=3,
)


def _final(db, ids: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rows = db.execute(
        "SELECT status, count(*) AS n FROM jobs WHERE id = ANY(%s::uuid[]) GROUP BY status", (ids,)
    ).fetchall()
    return {r["status"]: int(r["n"]) for r in rows}


def test_pool_goes_from_zero_to_n_and_back_on_a_burst_with_nothing_lost(
    settings, services, db, tmp_path: Path
):  # type: ignore[no-untyped-def]
    from cli.simulate import Tenancy, capture, create_tenant, make_phones, upload

    # given a stack whose keystroke pool is autoscaled between 0 and 2 processes holding 4 jobs each
    env = dict(os.environ, **{KEYRING_ENV: str(services.keyring_file)}, TACIT_POOL__THREADS="4")
    stack = Stack(tmp_path, env, free_port(), factors=(FACTOR,), autoscaled=(FACTOR,))
    stack.start(timeout=180)
    scaler = Autoscaler(stack, {FACTOR: FIGURES})
    seen: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.25):
            scaler.poll_once()
            seen.append(scaler.replica_counts()[FACTOR])

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        time.sleep(3)
        # then with nothing queued it runs no worker at all
        assert set(seen) == {0}
        # when a burst of 160 uploads arrives
        t = Tenancy(
            stack.api_url, create_tenant(settings.database_url, f"autoscale-{uuid.uuid4().hex[:6]}")
        )
        make_phones(t, phones=8, factors=[FACTOR], seed=3)
        rng = np.random.default_rng(3)
        bodies = [
            (p, capture(FACTOR, p.persons[FACTOR], rng, 4)) for p in t.phones for _ in range(20)
        ]
        with t.client() as c, ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda a: upload(c, a[0], FACTOR, "verify", a[1]), bodies))
        # then the pool wakes and grows to its maximum (ceil(160 / 10) capped at 2)
        deadline = time.monotonic() + 180
        while not _events(scaler, "ready") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert max(seen) == 2 and _events(scaler, "ready")
        # when every replica goes (the last one too) while they hold jobs and others wait
        scaler.stop()
        assert scaler.processes()[FACTOR] == 0
        # then the pool comes back, every job reaches a final state once, and it sleeps again
        deadline = time.monotonic() + 180
        while sum(_final(db, ids).get(s, 0) for s in ("done", "failed", "dead")) < len(ids):
            assert time.monotonic() < deadline, _final(db, ids)
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while scaler.processes()[FACTOR] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert scaler.processes()[FACTOR] == 0
    finally:
        stop.set()
        thread.join(10)
        scaler.stop()
        stack.stop()
    # nothing lost or dead: verify batches of users without a template fail permanently, once
    statuses = _final(db, ids)
    assert (
        statuses.get("dead", 0) == 0
        and statuses.get("queued", 0) == statuses.get("running", 0) == 0
    )
    attempts = db.execute(
        "SELECT max(attempts) AS n FROM jobs WHERE id = ANY(%s::uuid[])", (ids,)
    ).fetchone()["n"]
    assert attempts <= 2  # a job held by a stopped replica is finished by it, not redone
    # and every replica that had loaded its model exited from its warm shutdown, none by surprise
    ready = {e["replica"] for e in _events(scaler, "ready")}
    exits = _events(scaler, "exit")
    assert len(exits) == len(_events(scaler, "start")) >= 3
    assert all(not e["unexpected"] for e in exits)
    assert all(e["code"] == 0 for e in exits if e["replica"] in ready)
    assert all(e["cold_start_s"] > 0 for e in _events(scaler, "ready"))


def _events(scaler: Autoscaler, kind: str) -> list[dict]:  # type: ignore[type-arg]
    if not scaler.log_path.exists():
        return []
    return [
        e for e in map(json.loads, scaler.log_path.read_text().splitlines()) if e["event"] == kind
    ]
