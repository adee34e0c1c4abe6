"""`tacit capacity --validate`: the simulator's prediction against a real autoscaled run.

1. An embedded stack (Postgres, Redis, API, relay, webhooks) whose keystroke pool is
   autoscaled by ``cli.autoscale`` with short local figures (``VALIDATE_FIGURES``).
2. Calibration, before the trace: three cold starts of a replica (a worker process
   from spawn to ready, while uploads arrive at the spike's rate) and its scoring rate
   (600 uploads queued with the pool at zero, then drained by one replica).
3. The trace: arrival times drawn once from ``TRACE`` (fixed seed, so every run replays
   the same uploads): three times a quiet spell with the pool asleep, a spike, a quiet
   spell; signed, sealed uploads through the API at those times, then ``TAIL_S`` of
   nothing.
4. Measured: the backlog peak (jobs accepted and not final, sampled every 0.25 s), the
   upload-to-score p99, and the worker process-seconds until the end of the tail.
   Predicted: ``core.capacity.simulate_pool`` on the same arrival times with the
   calibrated rate, each new replica drawing one of the calibrated cold starts, each
   stopped one paid for the calibrated warm shutdown, and the same figures (the mean of
   20 runs). Relative errors, goal 25%.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.scaling import PoolScaling

FACTOR = "keystroke"
GOAL = 0.25
# (seconds, uploads per second): three times asleep, a spike, quiet long enough to sleep again
TRACE: list[tuple[float, float]] = [(20.0, 0.0), (20.0, 25.0), (40.0, 0.0)] * 3
TAIL_S = 20.0
COLD_STARTS = 3  # calibration samples of a replica's cold start
SEED = 17
VALIDATE_FIGURES = PoolScaling(
    list_length=100,
    activation_list_length=0,
    min_replicas=0,
    max_replicas=2,
    cooldown_s=10,
    polling_s=2,
    latency_objective_s=30.0,
    activation_age_s=2.0,
    jobs_per_s_target=100.0,
    rate_window_s=10,
)


def trace_arrivals(trace: list[tuple[float, float]] = TRACE, seed: int = SEED) -> list[float]:
    """Upload times (s from the trace's start): Poisson within each spell, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    times, start = [], 0.0
    for length, rate in trace:
        n = int(rng.poisson(rate * length))
        times += sorted(float(x) for x in start + rng.uniform(0, length, n))
        start += length
    return times


def validate(args: argparse.Namespace, profile: dict[str, Any]) -> int:
    from cli.console import fail, say
    from cli.stack import StackError

    root = Path(tempfile.mkdtemp(prefix="tacit-validate-"))
    try:
        result = _run(root, say)
    except (StackError, RuntimeError) as e:
        return fail(str(e))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    m, p = result["measured"], result["predicted"]
    print(f"{'':<22} {'measured':>10} {'predicted':>10} {'error':>7}")
    for key, label in (
        ("backlog_peak", "backlog peak (jobs)"),
        ("p99_s", "upload-to-score p99 s"),
        ("process_seconds", "process-seconds"),
    ):
        err = result[f"{key.removesuffix('_s') if key == 'p99_s' else key}_error"]
        print(f"{label:<22} {m[key]:>10.1f} {p[key]:>10.1f} {err:>6.0%}")
    print(
        f"calibration: cold start {m['cold_start_s']:.1f} s, {m['jobs_per_s_per_replica']:.0f} jobs/s per replica;"
        f" {m['jobs']} uploads, {m['replica_starts']} replica starts"
    )
    worst = max(result["backlog_peak_error"], result["p99_error"], result["process_seconds_error"])
    print(f"goal: every error within {GOAL:.0%}: {'met' if worst <= GOAL else 'NOT met'}")
    if args.json:
        print(json.dumps(result))
    return 0


def _run(root: Path, say) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import dataclasses

    from cli.autoscale import Autoscaler
    from cli.simulate import Tenancy, capture, create_tenant, make_phones, upload
    from cli.stack import Stack, free_port, start_services

    say("tacit capacity --validate: starting an embedded stack (keystroke pool autoscaled) ...")
    services = start_services(root, use_environment=False)
    stack = Stack(root, services.env, free_port(), factors=(FACTOR,), autoscaled=(FACTOR,))
    scaler: Autoscaler | None = None
    try:
        stack.start(timeout=240)
        db_url = services.env["DATABASE_URL"]
        t = Tenancy(stack.api_url, create_tenant(db_url, f"validate-{uuid.uuid4().hex[:6]}"))
        make_phones(t, phones=8, factors=[FACTOR], seed=SEED)
        rng = np.random.default_rng(SEED)
        bodies = [capture(FACTOR, p.persons[FACTOR], rng, 4) for p in t.phones]
        client = t.client()
        sender = ThreadPoolExecutor(16)

        def send(i: int) -> str:
            return upload(
                client, t.phones[i % len(t.phones)], FACTOR, "verify", bodies[i % len(bodies)]
            )

        calibration = _calibrate(stack, send, sender, db_url, say)
        figures = VALIDATE_FIGURES
        scaler = Autoscaler(stack, {FACTOR: figures})
        scaler.log_path.unlink(missing_ok=True)  # the trace's events only
        arrivals = trace_arrivals()
        say(
            f"trace: {len(arrivals)} uploads over {sum(s for s, _ in TRACE):.0f} s"
            f" ({', '.join(f'{s:.0f} s at {r}/s' for s, r in TRACE)}), then {TAIL_S:.0f} s quiet"
        )
        stop = threading.Event()
        backlog: list[int] = []
        t0 = time.monotonic()
        ids: list[str] = []

        from core.db import connect

        with connect(db_url) as conn:
            since = conn.execute("SELECT now() AS t").fetchone()["t"]

        def poll() -> None:
            with connect(db_url) as conn:
                while not stop.wait(0.25):
                    scaler.poll_once()
                    n = conn.execute(
                        "SELECT count(*) AS n FROM jobs WHERE factor = %s AND status IN"
                        " ('queued', 'running') AND created_at >= %s",
                        (FACTOR, since),
                    ).fetchone()["n"]
                    backlog.append(int(n))

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        futures = []
        for i, at in enumerate(arrivals):
            delay = t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(sender.submit(send, i))
        ids = [f.result() for f in futures]
        horizon = sum(s for s, _ in TRACE) + TAIL_S
        time.sleep(max(0.0, t0 + horizon - time.monotonic()))
        process_seconds = scaler.process_seconds()[FACTOR]
        elapsed = time.monotonic() - t0
        stop.set()
        poller.join(10)
        latencies = _latencies(db_url, ids, say)
        starts = sum(
            1 for line in scaler.log_path.read_text().splitlines() if '"event": "start"' in line
        )
        measured = {
            "jobs": len(ids),
            "backlog_peak": max(backlog, default=0),
            "p99_s": float(np.percentile(latencies, 99)),
            "p50_s": float(np.percentile(latencies, 50)),
            "process_seconds": round(process_seconds * horizon / elapsed, 1),
            "replica_starts": starts,
            "cold_start_s": calibration["cold_start_s"],
            "cold_starts_s": calibration["cold_starts_s"],
            "stop_s": calibration["stop_s"],
            "jobs_per_s_per_replica": calibration["jobs_per_s"],
        }
        sender.shutdown()
        client.close()
    finally:
        if scaler:
            scaler.stop()
        stack.stop()
        services.stop()
    predicted = _predict(arrivals, horizon, dataclasses.replace(figures), calibration)
    return {
        "measured": measured,
        "predicted": predicted,
        "backlog_peak_error": _rel(predicted["backlog_peak"], measured["backlog_peak"]),
        "p99_error": _rel(predicted["p99_s"], measured["p99_s"]),
        "process_seconds_error": _rel(predicted["process_seconds"], measured["process_seconds"]),
    }


def _calibrate(stack, send, sender, db_url: str, say) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A replica's cold starts and scoring rate, under the conditions of the trace's spikes.

    600 uploads are queued with the pool at zero; then, while uploads keep arriving at the
    spike's rate (they cost the API CPU, which slows a model load on a small machine),
    ``COLD_STARTS`` replicas are started one after the other (spawn to ready; each but
    the last is stopped once ready, SIGTERM to exit timed); the last one's rate is the jobs it scores per second
    while the backlog lasts.
    """
    from cli.autoscale import Autoscaler

    say("calibration: queueing 600 uploads with the pool at zero ...")
    ids = list(sender.map(send, range(600)))
    spike = max(rate for _, rate in TRACE)
    paced: list[str] = []
    pacing = threading.Event()

    def pace() -> None:
        i = 600
        t = time.monotonic()
        while not pacing.is_set():
            paced.append(send(i))
            i += 1
            t += 1.0 / spike
            time.sleep(max(0.0, t - time.monotonic()))

    pacer = threading.Thread(target=pace, daemon=True)
    pacer.start()
    one = PoolScaling(
        list_length=1,
        activation_list_length=0,
        min_replicas=1,
        max_replicas=1,
        cooldown_s=0,
        polling_s=1,
    )
    colds: list[float] = []
    stops: list[float] = []
    scaler: Autoscaler | None = None
    try:
        for k in range(COLD_STARTS):
            scaler = Autoscaler(stack, {FACTOR: one})
            t0 = time.monotonic()
            scaler.poll_once()
            while not any(r.ready_at for r in scaler.pools[FACTOR].replicas):
                if time.monotonic() - t0 > 180:
                    raise RuntimeError(
                        "calibration: a worker process did not become ready within 180 s"
                    )
                time.sleep(0.05)
                scaler.poll_once()
            colds.append(round(time.monotonic() - t0, 2))
            if k < COLD_STARTS - 1:
                t2 = time.monotonic()
                scaler.stop()  # a warm shutdown while it holds jobs: SIGTERM to exit
                stops.append(time.monotonic() - t2)
        say(
            f"calibration: cold starts {', '.join(f'{c:.1f}' for c in colds)} s;"
            " draining the backlog with one replica ..."
        )
        start_done = _final_count(db_url, ids + paced)
        t1 = time.monotonic()
        while _final_count(db_url, ids) < len(ids):
            if time.monotonic() - t1 > 120:
                raise RuntimeError("calibration: one replica did not drain 600 jobs within 120 s")
            time.sleep(0.1)
        rate = (_final_count(db_url, ids + paced) - start_done) / max(1e-3, time.monotonic() - t1)
        pacing.set()
        pacer.join(10)
        while _final_count(db_url, ids + paced) < len(ids) + len(
            paced
        ):  # nothing left for the trace
            if time.monotonic() - t1 > 180:
                raise RuntimeError("calibration: its jobs did not finish within 180 s")
            scaler.poll_once()
            time.sleep(0.1)
    finally:
        pacing.set()
        pacer.join(10)
        if scaler:
            scaler.stop()
    return {
        "cold_start_s": round(float(np.mean(colds)), 2),
        "cold_starts_s": colds,
        "stop_s": round(float(np.mean(stops)) if stops else 0.0, 2),
        "jobs_per_s": round(rate, 1),
    }


def _final_count(db_url: str, ids: list[str]) -> int:
    from core.db import connect

    with connect(db_url) as conn:
        return int(
            conn.execute(
                "SELECT count(*) AS n FROM jobs WHERE id = ANY(%s::uuid[])"
                " AND status IN ('done', 'failed', 'dead')",
                (ids,),
            ).fetchone()["n"]
        )


def _latencies(db_url: str, ids: list[str], say) -> list[float]:  # type: ignore[no-untyped-def]
    from core.db import connect

    deadline = time.monotonic() + 120
    while _final_count(db_url, ids) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the trace's jobs did not all finish within 120 s of its end")
        time.sleep(0.5)
    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM finished_at - created_at) AS s FROM jobs"
            " WHERE id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    return [float(r["s"]) for r in rows]


def _predict(
    arrivals: list[float], horizon: float, figures: PoolScaling, calibration: dict[str, float]
) -> dict[str, float]:
    from core.capacity import Pool, simulate_pool

    dt = 0.05
    counts = np.bincount((np.asarray(arrivals) / dt).astype(int), minlength=int(horizon / dt))
    pool = Pool(
        mu=calibration["jobs_per_s"],
        cold_start_s=calibration["cold_start_s"],
        service_latency_s=0.05,
        scaling=figures,
        cold_start_samples=tuple(calibration["cold_starts_s"]),
        stop_s=calibration["stop_s"],
    )
    runs = [
        simulate_pool(counts, pool, dt=dt, policy="age", drain=False, seed=s) for s in range(20)
    ]
    return {
        "backlog_peak": float(np.mean([r.max_backlog for r in runs])),
        "p99_s": float(np.mean([r.p99_s for r in runs])),
        "process_seconds": float(np.mean([r.replica_seconds for r in runs])),
    }


def _rel(predicted: float, measured: float) -> float:
    return (
        round(abs(predicted - measured) / measured, 3)
        if measured
        else (0.0 if predicted == 0 else 1.0)
    )
