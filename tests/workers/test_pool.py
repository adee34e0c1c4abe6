"""A real worker process under load: batches form, the backlog stays visible, SIGTERM loses nothing."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cli.bench_worker import Bench

pytestmark = pytest.mark.integration
FACTOR = "gait"


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
    assert left > 0 and bench.queue_depth() >= left - 16  # the rest waits in the queue
    # when the pool comes back, every job ends done with exactly one score
    bench.start_workers(max_batch=64, threads=16, processes=1)
    rows = bench.wait_done(ids, timeout=120)
    assert all(r["status"] == "done" and r["scores"] == 1 for r in rows)
