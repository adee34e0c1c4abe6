"""Fault injection on the embedded stack (used by `tacit chaos` and the fault tests)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from cli import simulate
from cli.stack import Stack, free_port, start_services, wait_for

FACTOR = "keystroke"
# Short timeouts so that a scenario recovers in seconds rather than minutes.
UPLOAD_TIMEOUT_S = 6


def _spin(stop) -> None:  # type: ignore[no-untyped-def]
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """`processes` busy processes (a loaded machine: run queue above the cores) until exit."""
    stop = multiprocessing.get_context("spawn").Event()
    procs = [
        multiprocessing.get_context("spawn").Process(target=_spin, args=(stop,), daemon=True)
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()


class ChaosStack:
    """An embedded stack whose Postgres, Redis, object store and workers can be broken and healed."""

    def __init__(self, root: Path, factor: str = FACTOR) -> None:
        self.root, self.factor = root, factor
        self.rng = np.random.default_rng(11)

    def __enter__(self) -> ChaosStack:
        self.services = start_services(self.root, use_environment=False)
        # Short deadlines so that a scenario recovers in seconds rather than minutes.
        self.services.env.update(
            {
                "TACIT_RELIABILITY__RUNNING_DEADLINE_S": "10",
                "TACIT_RELIABILITY__VISIBILITY_TIMEOUT_S": "15",
                "TACIT_RELIABILITY__QUEUED_DEADLINE_S": "30",
                "TACIT_RELIABILITY__UPLOAD_TIMEOUT_S": str(UPLOAD_TIMEOUT_S),
                "TACIT_RELIABILITY__ORPHAN_SWEEP_EVERY_S": "2",
            }
        )
        self.stack = Stack(self.root, self.services.env, free_port(), factors=(self.factor,))
        self.stack.start(timeout=240)
        # Like `tacit up` (or Kubernetes), restart any process that dies during a scenario.
        self._supervising = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True, name="supervisor")
        self._supervisor.start()
        self.database_url = self.services.env["DATABASE_URL"]
        self.t = simulate.Tenancy(
            self.stack.api_url, simulate.create_tenant(self.database_url, "chaos")
        )
        simulate.make_phones(self.t, phones=2, factors=[self.factor], seed=5)
        with self.t.client() as c:
            ids = [
                simulate.upload(c, p, self.factor, "enrol", self._capture(p, 8))
                for p in self.t.phones
                for _ in range(3)
            ]
        simulate.wait_jobs(self.t, ids, "enrol ", timeout=120)
        return self

    def _supervise(self) -> None:
        while not self._supervising.wait(1.0):
            self.stack.supervise_once()

    def __exit__(self, *exc: object) -> None:
        self._supervising.set()
        self._supervisor.join()
        self.stack.stop()
        self.services.stop()

    # -- helpers ------------------------------------------------------------------
    def _capture(self, phone: simulate.Phone, n: int = 4) -> bytes:
        return simulate.capture(self.factor, phone.persons[self.factor], self.rng, n)

    def _envelope(self, phone: simulate.Phone):  # type: ignore[no-untyped-def]
        assert phone.device is not None
        now = int(time.time() * 1000)
        return phone.device.build_envelope(
            self._capture(phone),
            factor=self.factor,
            purpose="verify",
            capture_start_ms=now - 10_000,
            capture_end_ms=now,
        )

    def _upload_many(self, n: int, *, workers: int = 4) -> list[str]:
        """Upload `n` verify batches through the SDK (which retries 503s); returns accepted job ids."""

        def one(i: int) -> str | None:
            phone = self.t.phones[i % len(self.t.phones)]
            try:
                return simulate.upload(None, phone, self.factor, "verify", self._capture(phone))  # type: ignore[arg-type]
            except RuntimeError:
                return None  # refused in the end: not accepted, so nothing is owed

        with ThreadPoolExecutor(workers) as pool:
            return [j for j in pool.map(one, range(n)) if j]

    def _settle(self, name: str, ids: list[str], note: str, timeout: float = 180) -> dict[str, Any]:
        """Wait for the accepted jobs to end, then count done, failed, lost, duplicated and orphans."""
        from core.db import connect

        deadline = time.monotonic() + timeout
        with connect(self.database_url, autocommit=True) as conn:
            while True:
                rows = conn.execute(
                    "SELECT j.id::text AS id, j.status, (SELECT count(*) FROM scores s WHERE s.job_id = j.id) AS scores"
                    " FROM jobs j WHERE j.id = ANY(%s::uuid[])",
                    (ids,),
                ).fetchall()
                final = [r for r in rows if r["status"] in ("done", "failed", "dead")]
                if len(final) == len(ids) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            per_batch = conn.execute(
                "SELECT count(*) AS n FROM (SELECT batch_id FROM jobs GROUP BY batch_id HAVING count(*) > 1) x"
            ).fetchone()["n"]
            # Blobs of uploads whose outcome was unknown (a connection broke mid-statement)
            # are the relay's to remove once older than the upload timeout: give it that long.
            sweep_deadline = time.monotonic() + UPLOAD_TIMEOUT_S + 10
            while True:
                orphans, missing = self._orphans(conn)
                if not orphans or time.monotonic() > sweep_deadline:
                    break
                time.sleep(0.5)
        done = sum(r["status"] == "done" and r["scores"] == 1 for r in rows)
        return {
            "name": name,
            "accepted": len(ids),
            "done": done,
            "failed": sum(r["status"] in ("failed", "dead") for r in rows),
            "lost": len(ids) - len(final),
            "duplicated": sum(r["scores"] > 1 for r in rows) + per_batch,
            "orphans": orphans + missing,
            "missing_blobs": missing,
            "note": note,
        }

    def _orphans(self, conn) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        """(blobs no batch row references, batch rows whose blob is gone)."""
        from core.storage import LocalStore

        if getattr(self, "_store", None) is None:
            self._store = LocalStore(Path(self.services.env["TACIT_STORAGE__LOCAL_DIR"]))
        keys = {r["object_key"] for r in conn.execute("SELECT object_key FROM batches").fetchall()}
        stored = set(self._store.list("raw/"))
        return len(stored - keys), len(keys - stored)

    # -- scenarios ----------------------------------------------------------------
    def kill_worker(self, n: int) -> dict[str, Any]:
        """kill -9 the factor's worker while its jobs are queued and running, then restart it."""
        ids = self._upload_many(n)
        role = self.stack.roles[f"worker-{self.factor}"]
        assert role.proc is not None
        os.killpg(role.proc.pid, signal.SIGKILL)  # the supervisor restarts it
        return self._settle("kill_worker", ids, "SIGKILL mid-batch, restarted")

    def restart_redis(self, n: int) -> dict[str, Any]:
        """Redis dies and comes back EMPTY (no persistence) while uploads continue."""
        first = self._upload_many(n // 2)
        redis = self.services.redis
        assert redis is not None and redis.proc is not None
        redis.proc.kill()
        redis.proc.wait()
        for f in redis.dir.glob("*.aof"):
            f.unlink()
        for f in redis.dir.glob("appendonlydir/*"):
            f.unlink()
        second: list[str] = []
        uploader = threading.Thread(target=lambda: second.extend(self._upload_many(n - n // 2)))
        uploader.start()  # phones keep uploading; the SDK retries the 503s
        time.sleep(1.0)
        redis.start()  # same port, empty
        uploader.join()
        return self._settle("restart_redis", first + second, "killed, restarted empty")

    def restart_postgres(self, n: int) -> dict[str, Any]:
        """Postgres restarts (immediate shutdown) while phones upload; the API answers 503 meanwhile."""
        from pgserver import _commands

        result: list[str] = []
        uploader = threading.Thread(target=lambda: result.extend(self._upload_many(n, workers=2)))
        uploader.start()
        time.sleep(0.5)
        pg = self.services.postgres
        assert pg is not None and pg.server is not None
        refused = self._probe_503_during(
            lambda: _commands.pg_ctl(
                ["-w", "-m", "immediate", "restart"], pgdata=pg.dir, user=pg.server.system_user
            )
        )
        uploader.join()
        return self._settle(
            "restart_postgres", result, f"immediate restart; {refused} probe(s) answered 503"
        )

    def _probe_503_during(self, action) -> int:  # type: ignore[no-untyped-def]
        stop, seen = threading.Event(), [0]

        def probe() -> None:
            while not stop.is_set():
                try:
                    if httpx.get(self.stack.api_url + "/readyz", timeout=2).status_code == 503:
                        seen[0] += 1
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)

        th = threading.Thread(target=probe)
        th.start()
        action()
        wait_for(
            lambda: httpx.get(self.stack.api_url + "/readyz", timeout=2).status_code == 200,
            60,
            "API recovery",
        )
        stop.set()
        th.join()
        return seen[0]

    def store_down(self, n: int) -> dict[str, Any]:
        """The object store is unavailable: uploads get 503 and leave nothing; then it heals."""
        objects = Path(self.services.env["TACIT_STORAGE__LOCAL_DIR"])
        aside = objects.with_name("objects.aside")
        from core.db import connect

        with connect(self.database_url, autocommit=True) as conn:
            before = conn.execute("SELECT count(*) AS n FROM batches").fetchone()["n"]
        objects.rename(aside)
        objects.write_text("the object store is down")  # a file where the directory was
        refused = 0
        try:
            for i in range(min(n, 10)):
                phone = self.t.phones[i % 2]
                assert phone.device is not None
                batch_id, env = self._envelope(phone)
                saved, phone.device.max_attempts = phone.device.max_attempts, 1
                try:
                    phone.device.send(batch_id, env)
                except Exception as e:  # noqa: BLE001
                    refused += getattr(e, "status", 0) == 503
                finally:
                    phone.device.max_attempts = saved
            with connect(self.database_url, autocommit=True) as conn:
                after = conn.execute("SELECT count(*) AS n FROM batches").fetchone()["n"]
        finally:
            objects.unlink()
            aside.rename(objects)
        ids = self._upload_many(n)
        note = (
            f"{refused}/{min(n, 10)} refused with 503; {after - before} row(s) written while down"
        )
        result = self._settle("store_down", ids, note)
        result["orphans"] += after - before
        return result

    def duplicate_uploads(self, n: int) -> dict[str, Any]:
        """The same upload sent 10 times at once: one batch, one job, one score."""
        phone = self.t.phones[0]
        assert phone.device is not None
        ids: list[str] = []
        for _ in range(max(1, n // 10)):
            batch_id, env = self._envelope(phone)
            with ThreadPoolExecutor(10) as pool:
                receipts = list(
                    pool.map(lambda _, b=batch_id, e=env: phone.device.send(b, e).job_id, range(10))
                )  # type: ignore[union-attr]
            ids.extend(set(receipts))
        distinct = len(ids)
        result = self._settle(
            "duplicate_uploads", ids, f"{max(1, n // 10)} uploads x 10 concurrent copies"
        )
        result["duplicated"] += distinct - max(1, n // 10)
        return result
