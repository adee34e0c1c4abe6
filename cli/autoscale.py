"""`tacit up --autoscale`: KEDA's rules applied on one machine to the factor pools.

Every ``polling_s`` (per factor) the autoscaler reads what the ScaledObjects read: the
queue's Redis list length, the oldest queued job's age (Postgres, as exported in
``tacit_queue_oldest_age_seconds``) and the jobs scored per second over the last two
minutes (``rate_window_s``); ``core.scaling.desired_replicas`` turns them into a wish, and the largest wish
of the last ``cooldown_s`` is the target (the HPA's scale-down window, KEDA's cooldown).
A replica is one ``tacit worker --factor F`` process: starting one is a real cold start
(interpreter, torch, model load); stopping one is Celery's warm shutdown (SIGTERM: it
finishes the jobs it holds, what it did not start stays queued), so the last replica
goes like any other and nothing is lost.

Each start, ready and exit is a JSON line in ``<data dir>/logs/autoscale.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.stack import Role, Stack
from core.scaling import PoolScaling, desired_replicas


@dataclass
class Replica:
    role: Role
    started: float
    ready_at: float | None = None
    stopping_at: float | None = None


@dataclass
class FactorPool:
    factor: str
    scaling: PoolScaling
    replicas: list[Replica] = field(default_factory=list)
    wishes: deque[tuple[float, int]] = field(default_factory=deque)
    next_poll: float = 0.0
    serial: int = 0
    process_seconds: float = 0.0  # of replicas that have exited
    last: dict[str, Any] = field(default_factory=dict)

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.stopping_at is None]


class Autoscaler:
    """Starts and stops each autoscaled factor's worker processes between min and max."""

    def __init__(
        self,
        stack: Stack,
        figures: Mapping[str, PoolScaling],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack, self.clock = stack, clock
        self.pools = {f: FactorPool(f, s) for f, s in figures.items()}
        self.log_path = stack.data_dir / "logs" / "autoscale.jsonl"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._redis: Any = None
        self._lock = threading.Lock()  # poll_once and stop may run on different threads
        from core.settings import Settings

        self.queues = Settings().queues  # the stack's processes read the same environment

    # --- signals -------------------------------------------------------------------------
    def signals(self) -> dict[str, dict[str, float]]:
        """Per factor: depth (LLEN), age_s (oldest queued job), per_s (scored, last 2 min)."""
        import redis

        from core.backlog import oldest_queued_age
        from core.db import connect
        from core.jobs.operations import factor_load

        if self._redis is None:
            self._redis = redis.Redis.from_url(self.stack.env["REDIS_URL"], socket_timeout=5)
        pipe = self._redis.pipeline(transaction=False)
        for f in self.pools:
            pipe.llen(self.queues.score_queue(f))
        depths = dict(zip(self.pools, (int(n) for n in pipe.execute()), strict=True))
        with connect(self.stack.env["DATABASE_URL"]) as conn:
            ages = oldest_queued_age(conn, list(self.pools))
            windows = {p.scaling.rate_window_s for p in self.pools.values()}
            loads = {w: factor_load(conn, window_s=float(w)) for w in windows}
        return {
            f: {
                "depth": depths[f],
                "age_s": ages[f],
                "per_s": float(loads[p.scaling.rate_window_s].get(f, {}).get("per_s", 0.0)),
            }
            for f, p in self.pools.items()
        }

    # --- one pass ----------------------------------------------------------------------------
    def poll_once(self) -> None:
        """Reap exited replicas, mark ready ones, and rescale each factor whose poll is due."""
        with self._lock:
            self._poll_once()

    def _poll_once(self) -> None:
        now = self.clock()
        for pool in self.pools.values():
            self._reap(pool, now)
        due = [p for p in self.pools.values() if now >= p.next_poll]
        if not due:
            return
        readings = self.signals()
        for pool in due:
            pool.next_poll = now + pool.scaling.polling_s
            sig = readings[pool.factor]
            current = len(pool.live())
            want = desired_replicas(
                int(sig["depth"]), sig["age_s"], current, pool.scaling, jobs_per_s=sig["per_s"]
            )
            pool.wishes.append((now, want))
            while pool.wishes and pool.wishes[0][0] < now - pool.scaling.cooldown_s:
                pool.wishes.popleft()
            target = max(w for _, w in pool.wishes)
            pool.last = {**sig, "desired": want, "target": target}
            for _ in range(target - current):
                self._start(pool, now)
            for _ in range(current - target):
                self._stop(pool, now)

    def _start(self, pool: FactorPool, now: float) -> None:
        pool.serial += 1
        name = f"worker-{pool.factor}-{pool.serial}"
        role = Role(name, self.stack._argv("worker", "--factor", pool.factor))
        self.stack.spawn(role)
        pool.replicas.append(Replica(role, now))
        self._event("start", pool, role, now)

    def _stop(self, pool: FactorPool, now: float) -> None:
        # the newest first: a replica still loading its model holds no jobs
        replica = pool.live()[-1]
        replica.stopping_at = now
        if replica.role.proc and replica.role.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(replica.role.proc.pid, signal.SIGTERM)  # warm shutdown
        self._event("stop", pool, replica.role, now)

    def _reap(self, pool: FactorPool, now: float) -> None:
        for replica in list(pool.replicas):
            proc = replica.role.proc
            if replica.ready_at is None and self._ready_file(replica.role).exists():
                replica.ready_at = now
                self._event(
                    "ready", pool, replica.role, now, cold_start_s=round(now - replica.started, 2)
                )
            if proc is None or proc.poll() is not None:
                pool.replicas.remove(replica)
                pool.process_seconds += now - replica.started
                unexpected = replica.stopping_at is None
                self._event(
                    "exit",
                    pool,
                    replica.role,
                    now,
                    code=proc.returncode if proc else None,
                    unexpected=unexpected,
                )

    def _ready_file(self, role: Role) -> Path:
        return self.stack.data_dir / "run" / f"{role.name}.ready"

    def _event(self, what: str, pool: FactorPool, role: Role, now: float, **extra: Any) -> None:
        entry = {
            "ts": round(time.time(), 3),
            "event": what,
            "factor": pool.factor,
            "replica": role.name,
            "replicas": len(pool.live()),
            "pid": role.proc.pid if role.proc else None,
            **{k: v for k, v in pool.last.items() if k in ("depth", "age_s", "per_s", "target")},
            **extra,
        }
        with self.log_path.open("a") as out:
            out.write(json.dumps(entry) + "\n")

    def poll_once_logged(self) -> None:
        """``poll_once``, reporting a failed read (Postgres or Redis away) in one line instead of dying."""
        import sys

        try:
            self.poll_once()
        except Exception as e:  # noqa: BLE001 - the stack keeps running; the next poll retries
            print(
                f"tacit: autoscale: could not read the queues: {e.__class__.__name__}: {e}",
                file=sys.stderr,
            )

    # --- figures and shutdown --------------------------------------------------------------
    def pools_figures(self) -> dict[str, PoolScaling]:
        return {f: p.scaling for f, p in self.pools.items()}

    def replica_counts(self) -> dict[str, int]:
        """Replicas per factor, not counting those in their warm shutdown."""
        return {f: len(p.live()) for f, p in self.pools.items()}

    def processes(self) -> dict[str, int]:
        """Worker processes per factor still running, those shutting down included."""
        return {f: len(p.replicas) for f, p in self.pools.items()}

    def process_seconds(self) -> dict[str, float]:
        """Seconds of worker processes per factor, from each start to its exit (or now)."""
        now = self.clock()
        return {
            f: p.process_seconds + sum(now - r.started for r in p.replicas)
            for f, p in self.pools.items()
        }

    def stop(self, grace: float = 60.0) -> None:
        """Warm shutdown of every replica; SIGKILL what is still running after ``grace``."""
        with self._lock:
            self._stop_all(grace)

    def _stop_all(self, grace: float) -> None:
        now = self.clock()
        for pool in self.pools.values():
            for _ in range(len(pool.live())):
                self._stop(pool, now)
        deadline = time.monotonic() + grace
        for pool in self.pools.values():
            for replica in pool.replicas:
                proc = replica.role.proc
                if proc is None:
                    continue
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.1, deadline - time.monotonic()))
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            self._reap(pool, self.clock())


def local_figures(factors: tuple[str, ...], max_replicas: int | None) -> dict[str, PoolScaling]:
    """The settings' figures (``TACIT_SCALING__*``), ``max_replicas`` capped for one machine."""
    import dataclasses

    from cli.scale import pool_scaling
    from core.settings import Settings

    figures = pool_scaling(Settings().scaling)
    out = {}
    for f in factors:
        s = figures[f]
        if max_replicas is not None:
            s = dataclasses.replace(
                s, max_replicas=max(s.min_replicas, min(s.max_replicas, max_replicas))
            )
        out[f] = s
    return out
