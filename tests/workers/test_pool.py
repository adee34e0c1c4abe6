"""A real worker process under load: batches form, the backlog stays visible, SIGTERM loses nothing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from cli.bench_worker import Bench

pytestmark = pytest.mark.integration
FACTOR = "gait"
# A hard-killed pool's unacked messages are handed out again after 5 s (not 5 minutes).
QUICK_REDELIVERY = {"TACIT_RELIABILITY__VISIBILITY_TIMEOUT_S": "5"}


@pytest.fixture()
def bench(tmp_path: Path):  # type: ignore[no-untyped-def]
    b = Bench(FACTOR, "cpu", tmp_path)
    yield b
    b.close()


def _captures(n: int, rows: int, seed: int = 0) -> list[bytes]:
    from pipelines.gait import synthetic

    rng = np.random.default_rng(seed)
    person = synthetic.make_person(1)
    return [synthetic.capture(person, rng, rows) for _ in range(n)]


def _unacked(bench: Bench) -> int:
    import redis

    return int(redis.Redis.from_url(bench.env["REDIS_URL"]).hlen("unacked"))


def _running(bench: Bench, ids: list[uuid.UUID]) -> int:
    with bench.pool.connection() as conn:
        return int(
            conn.execute(
                "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status = 'running'", (ids,)
            ).fetchone()["n"]
        )


def _batch_sizes(root: Path) -> list[int]:
    sizes = []
    for log in root.glob("worker-*.log"):
        for line in log.read_text().splitlines():
            if '"event": "batch"' in line:
                sizes.append(json.loads(line)["jobs"])
    return sizes


def test_pool_scores_hundreds_of_jobs_in_batches_while_the_queue_drains_steadily(bench):  # type: ignore[no-untyped-def]
    # given an enrolled user and 1,000 verify jobs waiting in the queue
    bench.start_workers(max_batch=128, threads=32, processes=1, loglevel="INFO")
    bench.run_jobs(bench.create_jobs(_captures(3, 8), "enrol"), "enrol")
    bench.stop_workers()
    jobs = bench.create_jobs(_captures(1000, 4, seed=1), "verify")
    for job_id, queue in jobs:
        bench.publisher.send(job_id, queue)
    assert bench.queue_depth() == 1000
    # when a pool holding at most 32 jobs at a time works through them, sampling the list length
    depths: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            depths.append(bench.queue_depth())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    bench.start_workers(max_batch=128, threads=32, processes=1, loglevel="INFO")
    bench.run_jobs([], "drain")  # nothing more to publish
    ids = [j for j, _ in jobs]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and bench.queue_depth() > 0:
        time.sleep(0.1)
    with bench.pool.connection() as conn:
        while time.monotonic() < deadline:
            n = conn.execute(
                "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status = 'done'", (ids,)
            ).fetchone()["n"]
            if n == len(ids):
                break
            time.sleep(0.2)
    stop.set()
    sampler.join()
    # then every job is done, the model ran batches of several jobs
    assert n == len(ids)
    sizes = _batch_sizes(bench.root)
    assert max(sizes) > 1, sizes
    # and the list length fell step by step with the work (never below what was left to start)
    assert max(depths) >= 1000 - 32
    steps = {d // 50 for d in depths if 0 < d < 950}
    assert len(steps) >= 10, sorted(set(depths))
    assert all(later <= earlier for earlier, later in zip(depths, depths[1:], strict=False))


def test_sigterm_to_a_busy_pool_finishes_held_jobs_and_leaves_the_rest_queued(bench):  # type: ignore[no-untyped-def]
    bench.start_workers(max_batch=64, threads=16, processes=1)
    bench.run_jobs(bench.create_jobs(_captures(3, 8), "enrol"), "enrol")
    jobs = bench.create_jobs(_captures(300, 8, seed=2), "verify")
    for job_id, queue in jobs:
        bench.publisher.send(job_id, queue)
    time.sleep(0.5)  # busy now
    [worker] = bench.workers
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    bench.workers = []
    ids = [j for j, _ in jobs]
    with bench.pool.connection() as conn:
        running = conn.execute(
            "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status = 'running'", (ids,)
        ).fetchone()["n"]
        left = conn.execute(
            "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s) AND status = 'queued'", (ids,)
        ).fetchone()["n"]
    assert running == 0  # held jobs were finished before exit
    assert _unacked(bench) == 0  # and their acknowledgements sent
    assert left > 0 and bench.queue_depth() >= left - 16  # the rest waits in the queue
    # when the pool comes back, every job ends done with exactly one score
    bench.start_workers(max_batch=64, threads=16, processes=1)
    rows = bench.wait_done(ids, timeout=120)
    assert all(r["status"] == "done" and r["scores"] == 1 for r in rows)


def test_kill_9_of_a_pool_holding_messages_taken_in_bulk_loses_none_and_scores_each_once(bench):  # type: ignore[no-untyped-def]
    # given a busy pool of 8 threads, holding several messages unacked, with more waiting
    bench.start_workers(max_batch=64, threads=8, processes=1, extra_env=QUICK_REDELIVERY)
    bench.run_jobs(bench.create_jobs(_captures(3, 8), "enrol"), "enrol")
    jobs = bench.create_jobs(_captures(300, 8, seed=3), "verify")
    ids = [j for j, _ in jobs]
    for job_id, queue in jobs:
        bench.publisher.send(job_id, queue)
    deadline = time.monotonic() + 60
    while (_unacked(bench) < 4 or _running(bench, ids) == 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    # when it is killed outright
    [worker] = bench.workers
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(30)
    bench.workers = []
    # then the messages it held are still recorded as unacked, and the rest show in the list
    assert _unacked(bench) >= 4 and 0 < _running(bench, ids) <= 8
    assert bench.queue_depth() > 0
    # and when a pool comes back, every job ends done with exactly one score
    bench.start_workers(max_batch=64, threads=8, processes=1, extra_env=QUICK_REDELIVERY)
    rows = bench.wait_done(ids, timeout=180)
    assert all(r["status"] == "done" and r["scores"] == 1 for r in rows), [
        r for r in rows if r["status"] != "done" or r["scores"] != 1
    ]
    deadline = time.monotonic() + 30
    while _unacked(bench) and time.monotonic() < deadline:  # redelivered ones acked too
        time.sleep(0.2)
    assert _unacked(bench) == 0
