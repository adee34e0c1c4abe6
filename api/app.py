"""The FastAPI application: thin routes over the shared core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import State

from api import errors, openapi, ops
from api import metrics as api_metrics
from api.guard import RequestGuard
from api.routes import batches, devices, enrolment, health, jobs, keys, tenant, users, webhooks
from core.backlog import BacklogGuard
from core.batches.uploads import Uploads
from core.db import make_async_pool, make_pool
from core.devices.service import SigningKeys
from core.publisher import JobPublisher
from core.ratelimit import AddressLimits, UploadGate
from core.settings import Settings, get_settings
from core.storage import ObjectStore, make_store


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _running(app.state, settings):
            yield

    app = FastAPI(
        title="Tacit",
        version="1",
        summary="Implicit authentication: encrypted sensor batches in, calibrated trust scores out.",
        lifespan=lifespan,
    )
    errors.install(app)
    # before the metrics: UploadTimer stays the outermost and times the body read too
    app.add_middleware(RequestGuard, settings=settings)
    api_metrics.install(app)
    app.include_router(ops.router)
    for module in (health, batches, jobs, devices, enrolment, keys, users, webhooks, tenant):
        app.include_router(module.router)
    openapi.install(app)
    if settings.bench.noop_endpoint:
        from api.routes import bench

        app.include_router(bench.router)
    return app


@asynccontextmanager
async def _running(state: State, settings: Settings) -> AsyncIterator[None]:
    """The clients the routes share, on `app.state` while the app runs, closed after."""
    state.settings = settings
    state.pool = make_pool(settings.database_url, min_size=2, max_size=20, name="api")
    state.pool.open(wait=False)
    # the upload path runs on the event loop, one round trip per statement
    uploads_db = make_async_pool(settings.database_url, min_size=2, max_size=20, name="api-uploads")
    await uploads_db.open(wait=False)
    state.store = make_store(settings.storage)
    publisher = JobPublisher(settings, state.pool)
    state.redis = redis.Redis.from_url(
        settings.redis_url, socket_timeout=2, socket_connect_timeout=2
    )
    aredis = redis.asyncio.Redis.from_url(
        settings.redis_url, socket_timeout=2, socket_connect_timeout=2
    )
    state.uploads = _uploads(settings, uploads_db, state.store, publisher, aredis)
    state.address_limits = AddressLimits(
        aredis,
        {
            "redeem": settings.http.redeem_per_min,
            "keys": settings.http.keys_per_min,
            "readyz": settings.http.readyz_per_min,
            "ops_login": settings.ops.login_attempts_per_min,
        },
    )
    try:
        yield
    finally:
        await asyncio.to_thread(publisher.flush)
        await uploads_db.close()
        state.pool.close()
        state.redis.close()
        await aredis.aclose()


def _uploads(
    settings: Settings,
    db: AsyncConnectionPool,
    store: ObjectStore,
    publisher: JobPublisher,
    aredis: redis.asyncio.Redis,
) -> Uploads:
    """The upload use case, with its signing-key cache, rate gate and backlog check."""
    limits = settings.limits
    return Uploads(
        db,
        store,
        publisher,
        settings,
        keys=SigningKeys(
            refused_ttl_s=settings.http.unknown_device_ttl_s,
            refused_max=settings.http.unknown_device_cache,
        ),
        gate=UploadGate(
            aredis,
            device_per_min=limits.device_rate_per_min,
            tenant_per_min=limits.tenant_rate_per_min,
        ),
        check_backlog=BacklogGuard(aredis, limit=limits.backlog_limit),
    )
