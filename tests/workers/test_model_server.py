"""The multi-process pool (`tacit worker --cpu-processes N`): one model process, N CPU workers.

Real worker processes over embedded Postgres and Redis (as in test_pool): the pool scores
as the single-process pool does, and a CPU process killed mid-run stops the pool without
losing or double-scoring a job: its held jobs are redelivered to the pool that comes back,
and a message it had taken but not yet recorded as unacked is requeued by the sweeper.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest

from cli.bench_worker import Bench

pytestmark = pytest.mark.integration
FACTOR = "gait"
# A hard-killed process's unacked messages are handed out again after 5 s (not 5 minutes);
# one it had popped but not yet recorded as unacked is the sweeper's to requeue (10 s).
QUICK_REDELIVERY = {
    "TACIT_RELIABILITY__VISIBILITY_TIMEOUT_S": "5",
    "TACIT_RELIABILITY__QUEUED_DEADLINE_S": "10",
    "TACIT_RELIABILITY__RUNNING_DEADLINE_S": "60",
}


@pytest.fixture()
def bench(tmp_path: Path):  # type: ignore[no-untyped-def]
    b = Bench(FACTOR, "cpu", tmp_path)
    yield b
    b.close()


@pytest.fixture()
def relay(bench):  # type: ignore[no-untyped-def]
    """The outbox relay and sweeper over the bench's services, as a deployment runs it."""
    with open(bench.root / "relay.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "relay"],
            env=dict(bench.env, **QUICK_REDELIVERY),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield proc
    proc.terminate()
    proc.wait(30)


def _captures(n: int, rows: int, seed: int = 0) -> list[bytes]:
    from pipelines.gait import synthetic

    rng = np.random.default_rng(seed)
    person = synthetic.make_person(1)
    return [synthetic.capture(person, rng, rows) for _ in range(n)]


def _start(bench: Bench, cpu_processes: int) -> None:
    bench.start_workers(
        max_batch=64,
        threads=8,
        processes=1,
        cpu_processes=cpu_processes,
        extra_env=QUICK_REDELIVERY,
    )


def _scores(bench: Bench, jobs: list[tuple[uuid.UUID, str]]) -> list[float]:
    ids = [j for j, _ in jobs]
    with bench.pool.connection() as conn:
        by_job = {
            r["job_id"]: r["score"]
            for r in conn.execute(
                "SELECT job_id, score FROM scores WHERE job_id = ANY(%s)", (ids,)
            ).fetchall()
        }
    return [by_job[j] for j in ids]


def _cpu_processes(pool_pid: int) -> list[psutil.Process]:
    """The pool's CPU worker processes (its other child is the model process)."""
    return [p for p in psutil.Process(pool_pid).children() if "model-server" not in p.cmdline()]


def test_several_cpu_processes_score_as_one_process_does(bench):  # type: ignore[no-untyped-def]
    # given a user enrolled by a single-process pool, and the scores it gives 12 captures
    _start(bench, cpu_processes=1)
    bench.run_jobs(bench.create_jobs(_captures(3, 8), "enrol"), "enrol")
    verify = _captures(12, 8, seed=1)
    single = bench.create_jobs(verify, "verify")
    bench.run_jobs(single, "single")
    bench.stop_workers()
    # when a pool of two CPU processes and one model process scores the same captures
    _start(bench, cpu_processes=2)
    [pool] = bench.workers
    assert len(_cpu_processes(pool.pid)) == 2
    multi = bench.create_jobs(verify, "verify")
    bench.run_jobs(multi, "multi")
    # then the scores are the same
    assert np.allclose(_scores(bench, single), _scores(bench, multi), atol=1e-6)


def test_a_killed_cpu_process_stops_the_pool_and_its_jobs_are_scored_once_later(bench, relay):  # type: ignore[no-untyped-def]
    # given an enrolled user and a busy pool of two CPU processes
    _start(bench, cpu_processes=2)
    bench.run_jobs(bench.create_jobs(_captures(3, 8), "enrol"), "enrol")
    jobs = bench.create_jobs(_captures(400, 8, seed=2), "verify")
    ids = [j for j, _ in jobs]
    for job_id, queue in jobs:
        bench.publisher.send(job_id, queue)
    time.sleep(0.5)
    assert bench.queue_depth() > 0  # busy, with work still waiting
    [pool] = bench.workers
    model = next(p for p in psutil.Process(pool.pid).children() if "model-server" in p.cmdline())
    # when one CPU process is killed outright
    _cpu_processes(pool.pid)[0].send_signal(signal.SIGKILL)
    # then the pool stops as a whole: the other CPU process and the model process end too
    pool.wait(90)
    bench.workers = []
    with bench.pool.connection() as conn:
        held = [
            r["id"]
            for r in conn.execute(
                "SELECT id FROM jobs WHERE id = ANY(%s) AND status = 'running'", (ids,)
            ).fetchall()
        ]
    assert 0 < len(held) <= 8  # the killed process's jobs (the other one finished its own)
    assert not model.is_running() or model.status() == psutil.STATUS_ZOMBIE
    log = "".join(p.read_text(errors="replace") for p in bench.root.glob("worker-*.log"))
    assert "a pool process exited; stopping the pool" in log
    # and when the pool comes back, every job ends done with exactly one score
    _start(bench, cpu_processes=2)
    rows = bench.wait_done(ids, timeout=180)
    with bench.pool.connection() as conn:
        attempts = conn.execute("SELECT attempts FROM jobs WHERE id = ANY(%s)", (held,)).fetchall()
    assert all(r["attempts"] == 2 for r in attempts)  # redelivered, claimed once more
    assert all(r["status"] == "done" and r["scores"] == 1 for r in rows), [
        r for r in rows if r["status"] != "done" or r["scores"] != 1
    ]
