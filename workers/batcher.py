"""Dynamic batching: many jobs' model inputs, one forward pass.

Task threads ``submit`` a job's preprocessed array [n_i, ...] and wait on a future;
one model thread gathers submissions until ``max_batch`` rows are waiting or
``max_wait_s`` has passed since the first one, runs the model once on the
concatenation, and hands each job its own rows back. A batch that raises is
re-run item by item, so one bad job fails alone; a transient error (a model server
that is down) fails the whole batch at once, and every job in it is retried.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from core.errors import TransientJobError

log = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BatchStats:
    jobs: int
    rows: int
    wait_s: float  # oldest item's time in the batcher before the model ran
    model_s: float


@dataclass
class _Item:
    x: np.ndarray
    future: Future[np.ndarray]
    t_submit: float


class DynamicBatcher:
    def __init__(
        self,
        run: RunFn,
        *,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[BatchStats], None] | None = None,
        name: str = "batcher",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.run, self.max_batch, self.max_wait_s, self.on_batch = (
            run,
            max_batch,
            max_wait_s,
            on_batch,
        )
        self._on_close = on_close  # releases what `run` holds (a remote model's connection)
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray) -> Future[np.ndarray]:
        """Queue one job's rows; the future yields that job's outputs (or its own error)."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        fut: Future[np.ndarray] = Future()
        self._queue.put(_Item(np.asarray(x), fut, time.monotonic()))
        return fut

    def close(self, timeout: float = 30.0) -> None:
        """Finish what was submitted, then stop the model thread."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._on_close is not None:
            self._on_close()

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        items, rows = [first], len(first.x)
        deadline = first.t_submit + self.max_wait_s
        stop = False
        while rows < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            items.append(item)
            rows += len(item.x)
        return items, stop

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            items, stop = self._gather(first)
            self._execute(items)
            if stop:
                return

    def _execute(self, items: list[_Item]) -> None:
        t0 = time.monotonic()
        try:
            out = self._run_rows(np.concatenate([it.x for it in items], axis=0))
        except Exception as exc:  # noqa: BLE001 - isolate the failing job below
            if len(items) == 1 or isinstance(exc, TransientJobError):
                # a model (server) that is down fails the whole batch: every job is retried,
                # rather than calling it again once per job
                for it in items:
                    it.future.set_exception(exc)
                return
            for it in items:
                try:
                    it.future.set_result(self._run_rows(it.x))
                except Exception as exc:  # noqa: BLE001
                    it.future.set_exception(exc)
            return
        model_s = time.monotonic() - t0
        start = 0
        for it in items:
            it.future.set_result(out[start : start + len(it.x)])
            start += len(it.x)
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(items), start, t0 - items[0].t_submit, model_s))

    def _run_rows(self, x: np.ndarray) -> np.ndarray:
        """Run in chunks of at most max_batch rows (a single large job never exceeds it)."""
        if len(x) <= self.max_batch:
            return self.run(x)
        return np.concatenate(
            [self.run(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
        )
