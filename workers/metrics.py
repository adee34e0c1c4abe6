"""A worker process's own observability: /metrics and /healthz on a small HTTP server,
per-job and per-batch observations, and a heartbeat in Redis for the operator dashboard.

The server listens on ``settings.metrics_port`` (9100 by default; 0 turns it off).
The heartbeat is a JSON value under ``tacit:ops:worker:<host>:<pid>`` that expires
unless renewed, so a dead pool disappears from ``/ops`` by itself.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from core import metrics as m

log = logging.getLogger("tacit.worker")


class PoolStats:
    """Counters for the heartbeat, updated from task threads and the batcher thread."""

    def __init__(self, role: str, factor: str | None = None, device: str | None = None) -> None:
        self.role, self.factor, self.device = role, factor, device
        self.started = time.time()
        self._lock = threading.Lock()
        self.batches = self.batch_jobs = self.batch_rows = self.jobs_done = self.jobs_failed = 0

    def note_batch(self, jobs: int, rows: int) -> None:
        with self._lock:
            self.batches += 1
            self.batch_jobs += jobs
            self.batch_rows += rows

    def note_job(self, *, ok: bool) -> None:
        with self._lock:
            if ok:
                self.jobs_done += 1
            else:
                self.jobs_failed += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            b = max(1, self.batches)
            return {
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "role": self.role,
                "factor": self.factor,
                "device": self.device,
                "started_at": self.started,
                "batches": self.batches,
                "mean_batch_jobs": round(self.batch_jobs / b, 2) if self.batches else 0.0,
                "mean_batch_rows": round(self.batch_rows / b, 2) if self.batches else 0.0,
                "jobs_done": self.jobs_done,
                "jobs_failed": self.jobs_failed,
            }


_stats: PoolStats | None = None


def stats() -> PoolStats:
    """This process's pool stats (a placeholder until ``start`` names the role)."""
    global _stats
    if _stats is None:
        _stats = PoolStats("worker")
    return _stats


# -- observations ------------------------------------------------------------------


def observe_batch(factor: str, jobs: int, rows: int) -> None:
    """One forward pass of the dynamic batcher (its ``on_batch`` callback)."""
    m.BATCH_SIZE.labels(factor=factor).observe(rows)
    stats().note_batch(jobs, rows)


def observe_claim(factor: str, wait_s: float | None) -> None:
    """A job left its queue: how long it waited there."""
    if wait_s is not None:
        m.QUEUE_WAIT_SECONDS.labels(factor=factor).observe(wait_s)


def observe_done(factor: str, created_at: datetime, stages: dict[str, float]) -> None:
    """A job scored: upload-to-score latency, per-stage seconds, the done count."""
    m.UPLOAD_TO_SCORE_SECONDS.labels(factor=factor).observe(
        max(0.0, (datetime.now(UTC) - created_at).total_seconds())
    )
    for stage, seconds in stages.items():
        m.STAGE_SECONDS.labels(factor=factor, stage=stage).observe(seconds)
    m.JOBS.labels(factor=factor, status="done").inc()
    stats().note_job(ok=True)


def observe_error(factor: str, outcome: str) -> None:
    """A job raised: counted as ``retry``, ``failed`` or ``dead`` (``workers.errors.classify``)."""
    status = {"fail": "failed"}.get(outcome, outcome)
    m.JOBS.labels(factor=factor, status=status).inc()
    stats().note_job(ok=False)


# -- HTTP server -------------------------------------------------------------------


_readiness: Callable[[], dict[str, Any]] | None = None


def set_readiness(check: Callable[[], dict[str, Any]]) -> None:
    """What /readyz answers: ``check()`` returns a JSON object with a boolean ``ready``
    (a pool on a remote model reports its inference server there)."""
    global _readiness
    _readiness = check


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path == "/readyz":
            ready = _readiness() if _readiness else {"ready": True}
            self._send(
                200 if ready.get("ready") else 503, json.dumps(ready).encode(), "application/json"
            )
        elif path == "/healthz":
            body = {"status": "ok", "role": stats().role, "factor": stats().factor}
            self._send(200, json.dumps(body).encode(), "application/json")
        else:
            self._send(
                404,
                b'{"error": {"code": "not_found", "message": "no such path"}}',
                "application/json",
            )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - scrapes are not news
        return


def serve(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer | None:
    """Serve /metrics and /healthz on ``port`` from a daemon thread; None if ``port`` is 0."""
    if not port:
        return None
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    log.info(json.dumps({"event": "metrics_listening", "port": server.server_address[1]}))
    return server


def stop(server: ThreadingHTTPServer | None, timeout: float = 5.0) -> None:
    """Stop a server from `serve` without waiting forever on a loop that never ran."""
    if server is None:
        return
    closer = threading.Thread(target=server.shutdown, daemon=True)
    closer.start()
    closer.join(timeout)
    server.server_close()


# -- heartbeat ---------------------------------------------------------------------


def heartbeat_key(hostname: str, pid: int) -> str:
    return f"{m.WORKER_HEARTBEAT_PREFIX}{hostname}:{pid}"


def _beat(redis_url: str, stop: threading.Event) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    key = heartbeat_key(socket.gethostname(), os.getpid())
    while True:
        try:
            snap = stats().snapshot()
            client.set(
                key, json.dumps({**snap, "seen_at": time.time()}), ex=m.WORKER_HEARTBEAT_TTL_S
            )
        except redis.RedisError:
            pass  # the broker is down; the key expires and the pool shows as gone
        if stop.wait(m.WORKER_HEARTBEAT_EVERY_S):
            break
    try:
        client.delete(key)
    except redis.RedisError:
        pass


def start(
    *, role: str, port: int, redis_url: str, factor: str | None = None, device: str | None = None
) -> threading.Event:
    """Name this process's role, start the metrics server and the heartbeat.

    Returns an event that stops the heartbeat (and removes its key) when set.
    """
    global _stats
    current = stats()
    current.role, current.factor, current.device = role, factor, device
    _stats = current
    try:
        serve(port)
    except OSError as e:
        # A taken port must not stop scoring; the pool only loses its scrape target.
        log.warning(json.dumps({"event": "metrics_unavailable", "port": port, "reason": str(e)}))
    stop = threading.Event()
    threading.Thread(target=_beat, args=(redis_url, stop), name="heartbeat", daemon=True).start()
    return stop
