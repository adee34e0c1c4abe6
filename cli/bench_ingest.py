"""`tacit bench ingest`: accepted uploads per second against a no-op on the same server.

Simulated phones send real signed, HPKE-encrypted batches. In one run it measures
(1) a no-op endpoint (`GET /healthz`) with the same clients and concurrency, (2) uploads
at full speed (or at `--rate`), (3) upload-to-score latency at light load, then waits
for every accepted job and counts lost and duplicated ones.

The ratio compares the API with itself. In a deployment the scoring pools run on their
own (GPU) machines; on one small machine they would take the API's cores. So by default
(`--scoring after`) the pool stops taking jobs during the two timed windows (Celery's
`cancel_consumer`: the jobs wait in Redis, counted by the backlog guard) and resumes to
score them all afterwards. `--scoring during` leaves it running on the same cores.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from cli.console import Progress
from cli.up import DEFAULT_API_PROCESSES

FACTOR = "keystroke"
PHONES_PER_CONNECTION = 4


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("ingest", help="uploads/s vs a no-op endpoint, latencies, lost and duplicated jobs")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of upload load")
    p.add_argument("--concurrency", type=int, default=16, help="phones uploading at once")
    p.add_argument("--rate", type=float, default=None, help="paced uploads/s instead of as fast as possible")
    p.add_argument("--data-dir", type=Path, default=None, help="use the stack `tacit up` runs there")
    p.add_argument("--api-processes", type=int, default=DEFAULT_API_PROCESSES,
                   help="API processes of the embedded stack (as `tacit up`)")
    p.add_argument("--scoring", choices=("after", "during"), default="after",
                   help="score the timed uploads after the timed windows (default) or during them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


class Load:
    """Closed-loop (or paced) clients; each thread is one phone with its own connection."""

    def __init__(self, phones: list, concurrency: int) -> None:  # type: ignore[type-arg]
        self.phones, self.concurrency = phones, concurrency

    def run(self, duration: float, fn, *, rate: float | None = None, label: str) -> tuple[int, int, list[float], list[str], float]:  # type: ignore[no-untyped-def]
        ok, errors, latencies, ids = [0], [0], [], []
        lock = threading.Lock()
        t_end = time.monotonic() + duration
        interval = self.concurrency / rate if rate else 0.0
        bar = Progress(label, int(duration))

        def worker(i: int) -> None:
            mine = self.phones[i :: self.concurrency] or [self.phones[i % len(self.phones)]]
            turn = 0
            rng = np.random.default_rng(i)
            next_at = time.monotonic() + (interval * i / self.concurrency if interval else 0)
            while time.monotonic() < t_end:
                if interval:
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                phone, turn = mine[turn % len(mine)], turn + 1  # a connection's phones take turns
                t0 = time.perf_counter()
                try:
                    result = fn(phone, rng)
                except Exception:  # noqa: BLE001 - counted as an error
                    with lock:
                        errors[0] += 1
                    continue
                dt = (time.perf_counter() - t0) * 1e3
                with lock:
                    ok[0] += 1
                    latencies.append(dt)
                    if result:
                        ids.append(result)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(self.concurrency)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            bar.update(min(int(duration), int(time.perf_counter() - t0)), f"{ok[0]} ok {errors[0]} errors")
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        bar.finish(f"{ok[0]} ok {errors[0]} errors")
        return ok[0], errors[0], latencies, ids, elapsed


def run(args: argparse.Namespace) -> int:
    from cli.console import fail
    from cli.stack import running_stack

    try:
        with running_stack(args.data_dir, factors=(FACTOR,), label="bench-ingest",
                           api_processes=args.api_processes) as (api_url, env):
            result = measure(api_url, env, args)
    except Exception as e:  # noqa: BLE001 - one clear line
        return fail(f"{e.__class__.__name__}: {e}")
    print(f"no-op          {result['noop_per_s']:9.1f} req/s")
    print(f"ingest         {result['ingest_per_s']:9.1f} uploads/s   ratio {result['ratio']:.3f}   errors {result['errors']}")
    print(f"upload         p50 {result['upload_ms']['p50']:.1f} ms   p99 {result['upload_ms']['p99']:.1f} ms")
    print(f"upload->score  p50 {result['e2e_ms']['p50']:.1f} ms   p99 {result['e2e_ms']['p99']:.1f} ms   (light load)")
    if args.scoring == "during":
        print(f"upload->score  p50 {result['e2e_loaded_ms']['p50']:.1f} ms   p99 {result['e2e_loaded_ms']['p99']:.1f} ms"
              "   (under the load above)")
    else:
        print(f"backlog        {result['accepted']} jobs scored afterwards at {result['drain_per_s']:.1f} jobs/s")
    print(f"lost {result['lost']}   duplicated {result['duplicated']}   accepted {result['accepted']}"
          f"   failed {result['failed']}")
    if args.json:
        print(json.dumps(result))
    return 0 if result["lost"] == result["duplicated"] == result["failed"] == 0 else 1


class PoolSwitch:
    """Stops and restarts a factor pool's consumption with Celery's remote control."""

    def __init__(self, env: dict[str, str], factor: str) -> None:
        from celery import Celery

        from core.publisher import celery_config
        from core.settings import Settings

        settings = Settings(redis_url=env["REDIS_URL"])
        self.queue = settings.queues.score_queue(factor)
        self.app = Celery("tacit-bench")
        self.app.conf.update(celery_config(settings))
        self.workers: list[str] = []

    def pause(self) -> None:
        # only the workers consuming the queue: add_consumer sent to every worker would
        # make the others (the webhook pool too) consume it
        active = self.app.control.inspect(timeout=3).active_queues() or {}
        self.workers = [w for w, queues in active.items() if any(q["name"] == self.queue for q in queues)]
        if not self.workers:
            raise RuntimeError(f"no worker answered; is a pool consuming {self.queue}?")
        self.app.control.cancel_consumer(self.queue, destination=self.workers, reply=True, timeout=3)
        time.sleep(0.5)  # jobs already taken finish

    def resume(self) -> None:
        replies = self.app.control.add_consumer(self.queue, destination=self.workers, reply=True, timeout=3)
        if len(replies) < len(self.workers):
            raise RuntimeError(f"workers {self.workers} did not all resume consuming {self.queue}")


def measure(api_url: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from cli import simulate

    database_url = env["DATABASE_URL"]
    t = simulate.Tenancy(api_url, simulate.create_tenant(database_url, "bench"))
    # Several phones per connection, as many phones share a server: each stays far below
    # its own rate limit (TACIT_LIMITS__DEVICE_RATE_PER_MIN) at full load.
    simulate.make_phones(t, phones=args.concurrency * PHONES_PER_CONNECTION, factors=[FACTOR], seed=3)
    rng = np.random.default_rng(0)
    enrol = [simulate.upload(None, p, FACTOR, "enrol", simulate.capture(FACTOR, p.persons[FACTOR], rng, 8))  # type: ignore[arg-type]
             for p in t.phones for _ in range(3)]
    simulate.wait_jobs(t, enrol, "enrol ", timeout=300)
    for p in t.phones:
        p.device.max_attempts = 1  # count refusals instead of retrying them

    # Phones seal their batches when they capture them, not when the network comes back:
    # build the envelopes first, so the timed phase pays only for signing and sending.
    sealed: dict[str, list] = {p.device_id: [] for p in t.phones}  # type: ignore[type-arg]
    per_phone = int(min(1000, max(50, (args.rate or 600) * args.duration / len(t.phones) * 1.2)))
    bar = Progress("seal  ", len(t.phones) * per_phone)
    for i, p in enumerate(t.phones):
        for _ in range(per_phone):
            now = int(time.time() * 1000)
            sealed[p.device_id].append(p.device.build_envelope(
                simulate.capture(FACTOR, p.persons[FACTOR], rng, 4), factor=FACTOR, purpose="verify",
                capture_start_ms=now - 10_000, capture_end_ms=now))
        bar.update((i + 1) * per_phone)
    bar.finish()

    def upload(phone, rng):  # type: ignore[no-untyped-def]
        queue = sealed[phone.device_id]
        if queue:
            batch_id, envelope = queue.pop()
            return phone.device.send(batch_id, envelope).job_id
        return simulate.upload(None, phone, FACTOR, "verify", simulate.capture(FACTOR, phone.persons[FACTOR], rng, 4))  # type: ignore[arg-type]

    clients: dict[int, httpx.Client] = {}

    def noop(phone, rng):  # type: ignore[no-untyped-def]
        c = clients.get(threading.get_ident())
        if c is None:
            c = clients[threading.get_ident()] = httpx.Client(base_url=api_url, timeout=30)
        c.get("/healthz").raise_for_status()
        return None

    load = Load(t.phones, args.concurrency)
    pool = PoolSwitch(env, FACTOR) if args.scoring == "after" else None
    if pool:
        pool.pause()
    try:
        n_noop, _, _, _, s_noop = load.run(min(5.0, max(2.0, args.duration / 4)), noop, label="no-op ")
        n_up, errors, up_lat, loaded_ids, s_up = load.run(args.duration, upload, rate=args.rate, label="ingest")
    finally:
        if pool:
            pool.resume()
    drain_s = wait_final(database_url, loaded_ids, "drain ")
    # light load: one phone, one upload at a time, paced
    light = Load(t.phones[:1], 1)
    _, light_errors, _, light_ids, _ = light.run(5.0, upload, rate=10.0, label="light ")
    wait_final(database_url, light_ids, "score ")
    loaded, lit = job_stats(database_url, loaded_ids), job_stats(database_url, light_ids)
    noop_rate, ingest_rate = n_noop / s_noop, n_up / s_up
    return {
        "ingest_per_s": round(ingest_rate, 1),
        "noop_per_s": round(noop_rate, 1),
        "ratio": round(ingest_rate / noop_rate, 3) if noop_rate else 0.0,
        "upload_ms": {"p50": _pct(up_lat, 50), "p99": _pct(up_lat, 99)},
        "e2e_ms": {"p50": _pct(lit["e2e"], 50), "p99": _pct(lit["e2e"], 99)},
        "e2e_loaded_ms": {"p50": _pct(loaded["e2e"], 50), "p99": _pct(loaded["e2e"], 99)},
        "errors": errors + light_errors,
        "lost": loaded["lost"] + lit["lost"],
        "duplicated": loaded["duplicated"] + lit["duplicated"],
        "accepted": len(loaded_ids) + len(light_ids),
        "failed": loaded["failed"] + lit["failed"],
        "scoring": args.scoring,
        "drain_per_s": round(len(loaded_ids) / drain_s, 1) if drain_s else 0.0,
    }


def wait_final(database_url: str, ids: list[str], label: str, timeout: float = 600) -> float:
    """Seconds until every job in `ids` is done, failed or dead (or the timeout)."""
    from core.db import connect

    bar = Progress(label, len(ids))
    deadline = time.monotonic() + timeout
    with connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            n = conn.execute("SELECT count(*) AS n FROM jobs WHERE id = ANY(%s::uuid[])"
                             " AND status IN ('done','failed','dead')", (ids,)).fetchone()["n"]
            bar.update(n)
            if n == len(ids):
                break
            time.sleep(0.3)
    bar.finish()
    return timeout - max(0.0, deadline - time.monotonic())


def job_stats(database_url: str, ids: list[str]) -> dict[str, Any]:
    """Upload-to-score ms of the done jobs, and the lost and duplicated counts."""
    from core.db import connect

    with connect(database_url, autocommit=True) as conn:
        rows = {r["id"]: r for r in conn.execute(
            "SELECT j.id::text AS id, j.status, extract(epoch FROM j.finished_at - j.created_at) * 1000 AS ms,"
            " (SELECT count(*) FROM scores s WHERE s.job_id = j.id) AS scores"
            " FROM jobs j WHERE j.id = ANY(%s::uuid[])", (ids,)).fetchall()}
        dup_batches = conn.execute(
            "SELECT count(*) AS n FROM (SELECT batch_id FROM jobs WHERE id = ANY(%s::uuid[])"
            " GROUP BY batch_id HAVING count(*) > 1) x", (ids,)).fetchone()["n"]
    e2e = [float(rows[i]["ms"]) for i in ids if i in rows and rows[i]["status"] == "done"]
    failed = sum(1 for i in ids if i in rows and rows[i]["status"] in ("failed", "dead"))
    lost = sum(1 for i in ids if i not in rows or rows[i]["status"] not in ("done", "failed", "dead"))
    duplicated = sum(1 for r in rows.values() if r["scores"] > 1) + dup_batches + (len(ids) - len(set(ids)))
    return {"e2e": e2e, "lost": lost, "duplicated": duplicated, "failed": failed}
