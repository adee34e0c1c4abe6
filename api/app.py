"""The FastAPI application: thin routes over the shared core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio
from fastapi import FastAPI

from api import errors, openapi, ops
from api import metrics as api_metrics
from api.guard import RequestGuard
from api.routes import batches, devices, enrolment, health, jobs, keys, tenant, users, webhooks
from core.backlog import BacklogGuard
from core.db import make_async_pool, make_pool
from core.devices.service import SigningKeys
from core.publisher import JobPublisher
from core.ratelimit import AddressLimits, UploadGate
from core.settings import Settings, get_settings
from core.storage import make_store


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = app.state
        state.settings = settings
        state.pool = make_pool(settings.database_url, min_size=2, max_size=20, name="api")
        state.pool.open(wait=False)
        # the upload path runs on the event loop, one round trip per statement
        state.db = make_async_pool(
            settings.database_url, min_size=2, max_size=20, name="api-uploads"
        )
        await state.db.open(wait=False)
        state.signing_keys = SigningKeys(
            refused_ttl_s=settings.http.unknown_device_ttl_s,
            refused_max=settings.http.unknown_device_cache,
        )
        state.store = make_store(settings.storage)
        state.publisher = JobPublisher(settings, state.pool)
        state.redis = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        state.aredis = redis.asyncio.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        state.backlog = BacklogGuard(state.aredis, limit=settings.limits.backlog_limit)
        state.upload_gate = UploadGate(
            state.aredis,
            device_per_min=settings.limits.device_rate_per_min,
            tenant_per_min=settings.limits.tenant_rate_per_min,
        )
        state.address_limits = AddressLimits(
            state.aredis,
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
            await asyncio.to_thread(state.publisher.flush)
            await state.db.close()
            state.pool.close()
            state.redis.close()
            await state.aredis.aclose()

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
