"""Prometheus on the API: ``GET /metrics`` and the upload timer.

``tacit_queue_depth`` (Redis LLEN) and ``tacit_dead_jobs`` (Postgres) are read when
Prometheus scrapes, from this app's own clients; the dead count is cached for a few
seconds so several scrapers do not each scan the jobs table.
"""

from __future__ import annotations

import os
import time

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Receive, Scope, Send

from core import factors as registry
from core import metrics as m
from core.backlog import oldest_queued_age
from core.jobs import operations

UPLOAD_PATH = "/v1/batches"
DEAD_CACHE_S = 10.0
AGE_CACHE_S = 1.0  # several API processes and scrapers share one figure per second

router = APIRouter(tags=["health"])


class _AppGauges:
    """The scrape-time gauges over one app's Redis client and Postgres pool."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._dead: tuple[float, dict[str, int]] | None = None
        self._ages: tuple[float, dict[str, float]] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(m.ScrapeTimeGauges(self.depths, self.dead, self.ages))

    def depths(self) -> dict[str, int]:
        state = self.app.state
        queues = [state.settings.queues.score_queue(f) for f in registry.names()]
        queues.append(state.settings.queues.webhooks)
        pipe = state.redis.pipeline(transaction=False)
        for q in queues:
            pipe.llen(q)
        return {q: int(n) for q, n in zip(queues, pipe.execute(), strict=True)}

    def dead(self) -> dict[str, int]:
        now = time.monotonic()
        if self._dead is None or now - self._dead[0] > DEAD_CACHE_S:
            with self.app.state.pool.connection(timeout=2) as conn:
                counts = operations.dead_counts(conn)
            self._dead = (now, counts)
        return self._dead[1]

    def ages(self) -> dict[str, float]:
        now = time.monotonic()
        if self._ages is None or now - self._ages[0] > AGE_CACHE_S:
            with self.app.state.pool.connection(timeout=2) as conn:
                ages = oldest_queued_age(conn, registry.names())
            self._ages = (now, ages)
        return self._ages[1]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format: this process's histograms plus the scrape-time gauges."""
    gauges: _AppGauges = request.app.state.metrics_gauges
    body = _process_metrics() + await run_in_threadpool(generate_latest, gauges.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _process_metrics() -> bytes:
    """This process's counters and histograms, summed over every API process when they share a directory."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def install(app: FastAPI) -> None:
    """Add ``/metrics`` and time every ``POST /v1/batches`` into ``tacit_upload_seconds``."""
    app.state.metrics_gauges = _AppGauges(app)
    app.include_router(router)

    app.add_middleware(UploadTimer)


class UploadTimer:
    """Pure ASGI middleware (no per-request wrapping of other routes): times uploads only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != UPLOAD_PATH:
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            m.UPLOAD_SECONDS.observe(time.perf_counter() - t0)
