"""The dynamic batcher: full batches, the wait bound, isolation of a bad job, results kept apart."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from workers.batcher import BatchStats, DynamicBatcher


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: float | None = None) -> None:
        self.calls: list[int] = []
        self.delay, self.fail_on = delay, fail_on
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append(len(x))
        if self.fail_on is not None and (x[:, 0] == self.fail_on).any():
            raise ValueError("poisoned input")
        time.sleep(self.delay)
        return x * 2


def test_fills_to_max_batch_when_jobs_arrive_together():
    # given a batcher with a long wait and jobs of one row each, submitted together
    run = Recorder()
    stats: list[BatchStats] = []
    b = DynamicBatcher(run, max_batch=8, max_wait_s=5.0, on_batch=stats.append)
    # when 16 jobs arrive at once
    futures = [b.submit(np.full((1, 3), i, np.float32)) for i in range(16)]
    results = [f.result(timeout=10) for f in futures]
    b.close()
    # then the model ran two full batches of 8, without waiting out the 5 s bound
    assert run.calls == [8, 8]
    assert [s.jobs for s in stats] == [8, 8]
    assert all(r.shape == (1, 3) for r in results)


def test_fires_on_max_wait_with_a_partial_batch():
    run = Recorder()
    b = DynamicBatcher(run, max_batch=64, max_wait_s=0.05)
    t0 = time.monotonic()
    out = b.submit(np.ones((3, 2), np.float32)).result(timeout=5)
    elapsed = time.monotonic() - t0
    b.close()
    assert run.calls == [3]
    assert 0.04 <= elapsed < 2.0
    np.testing.assert_array_equal(out, np.full((3, 2), 2.0))


def test_each_job_gets_its_own_rows_back():
    run = Recorder()
    b = DynamicBatcher(run, max_batch=100, max_wait_s=0.2)
    sizes = [1, 4, 2, 7, 3]
    futures = [b.submit(np.full((n, 2), i, np.float32)) for i, n in enumerate(sizes)]
    outs = [f.result(timeout=5) for f in futures]
    b.close()
    assert len(run.calls) == 1  # one forward pass for all five jobs
    for i, (n, out) in enumerate(zip(sizes, outs, strict=True)):
        assert out.shape == (n, 2)
        assert (out == 2 * i).all()


def test_a_failing_job_fails_alone():
    run = Recorder(fail_on=13.0)
    b = DynamicBatcher(run, max_batch=10, max_wait_s=0.2)
    good = [b.submit(np.full((1, 1), v, np.float32)) for v in (1.0, 2.0)]
    bad = b.submit(np.full((1, 1), 13.0, np.float32))
    more = b.submit(np.full((1, 1), 4.0, np.float32))
    with pytest.raises(ValueError, match="poisoned"):
        bad.result(timeout=5)
    assert [f.result(timeout=5)[0, 0] for f in [*good, more]] == [2.0, 4.0, 8.0]
    b.close()


def test_a_job_larger_than_max_batch_runs_in_chunks():
    run = Recorder()
    b = DynamicBatcher(run, max_batch=4, max_wait_s=0.01)
    out = b.submit(np.arange(10, dtype=np.float32).reshape(10, 1)).result(timeout=5)
    b.close()
    assert run.calls == [4, 4, 2]
    np.testing.assert_array_equal(out[:, 0], np.arange(10) * 2)


def test_close_finishes_what_was_submitted():
    run = Recorder(delay=0.05)
    b = DynamicBatcher(run, max_batch=2, max_wait_s=0.01)
    futures = [b.submit(np.ones((1, 1), np.float32)) for _ in range(6)]
    b.close()
    assert all(f.done() and f.exception() is None for f in futures)
