"""Group commit: the short database steps of many jobs, one transaction.

Every job needs two short transactions: its claim, then its score (or enrolment) with
the job marked done. One by one, each costs a pool checkout, a BEGIN and a COMMIT, on
the worker and on Postgres, for one or four statements of real work. Task threads
instead hand their step to a ``GroupCommit``: a committer thread takes every step
waiting (never waiting for more), runs them in one transaction ordered by key, commits
once and gives each thread its own result. Under load the groups grow by themselves;
when the pool is idle a step runs at once, alone.

A step must only touch the database through the connection it is given (no other side
effect), because it may be run twice: if any step of a group raises, the group is rolled
back and every step runs again in its own transaction, so one bad job fails alone and
the others still commit. When the database is unreachable every step of the group gets
that error at once rather than one timeout after another.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from core.db import DictConnection, transaction
from core.errors import Unavailable

log = logging.getLogger(__name__)

R = TypeVar("R")
Step = Callable[[DictConnection], R]


@dataclass(frozen=True)
class GroupStats:
    steps: int
    seconds: float  # from BEGIN to the end of COMMIT (or of the one-by-one reruns)
    alone: bool  # the group failed and its steps ran one by one


@dataclass
class _Pending:
    step: Step[Any]
    key: str
    future: Future[Any]


def _database_down(exc: BaseException) -> bool:
    """The database could not be reached (not a deadlock or a serialization failure)."""
    return isinstance(exc, Unavailable) and not isinstance(
        exc.__cause__, psycopg.errors.TransactionRollback
    )


class GroupCommit:
    def __init__(
        self,
        pool: ConnectionPool,
        *,
        max_steps: int = 64,
        threads: int = 2,
        on_group: Callable[[GroupStats], None] | None = None,
        name: str = "commit",
    ) -> None:
        if max_steps < 1 or threads < 1:
            raise ValueError("max_steps and threads must be at least 1")
        self.pool, self.max_steps, self.on_group = pool, max_steps, on_group
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def submit(self, step: Step[R], *, key: str = "") -> Future[R]:
        """Queue `step(conn)`; its future yields the step's result or its own error.

        Steps of one group run in the order of their keys, so that groups running at the
        same time take row and advisory locks in one order (pass the user id when a step
        locks per user).
        """
        if self._closed:
            raise RuntimeError("group commit is closed")
        fut: Future[R] = Future()
        self._queue.put(_Pending(step, key, fut))
        return fut

    def run(self, step: Step[R], *, key: str = "") -> R:
        """`submit` and wait: the step's result, or its error raised here."""
        return self.submit(step, key=key).result()

    def close(self, timeout: float = 30.0) -> None:
        """Commit what was submitted, then stop the committer threads."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_steps:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # this thread's stop comes after the group
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        group.sort(key=lambda p: p.key)
        t0 = time.monotonic()
        try:
            with transaction(self.pool) as conn:
                results = [p.step(conn) for p in group]
        except Exception as exc:  # noqa: BLE001 - handed to the steps' own threads below
            if len(group) == 1 or _database_down(exc):
                # one exception object per thread: each raise rewrites its traceback
                for i, p in enumerate(group):
                    p.future.set_exception(exc if i == 0 else copy.copy(exc))
            else:
                for p in group:
                    self._alone(p)
            self._observe(len(group), t0, alone=len(group) > 1)
            return
        for p, r in zip(group, results, strict=True):
            p.future.set_result(r)
        self._observe(len(group), t0, alone=False)

    def _alone(self, p: _Pending) -> None:
        try:
            with transaction(self.pool) as conn:
                result = p.step(conn)
        except Exception as exc:  # noqa: BLE001 - the step's own error, for its own thread
            p.future.set_exception(exc)
        else:
            p.future.set_result(result)

    def _observe(self, steps: int, t0: float, *, alone: bool) -> None:
        if self.on_group is None:
            return
        try:
            self.on_group(GroupStats(steps, time.monotonic() - t0, alone))
        except Exception:  # noqa: BLE001 - a metrics failure must not stop the committer
            log.exception("group commit callback failed")
