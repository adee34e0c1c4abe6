"""Request-scoped dependencies: the transaction, the calling tenant, shared clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request

from core.batches.uploads import Uploads
from core.db import transaction
from core.errors import Unauthorized
from core.settings import Settings
from core.storage import ObjectStore
from core.tenants.service import Tenant, authenticate

DictConnection = psycopg.Connection[dict[str, Any]]  # core.db's pools hand out dict-row connections


def get_conn(request: Request) -> Iterator[DictConnection]:
    """One transaction per request: committed when the endpoint returns, rolled back on error."""
    with transaction(request.app.state.pool) as conn:
        yield conn


# scope="function": the transaction commits before the response is sent, so a client
# that got 2xx can read what it wrote (and a failed commit is an error, not a 2xx).
ConnDep = Annotated[DictConnection, Depends(get_conn, scope="function")]


def get_tenant(request: Request, conn: ConnDep) -> Tenant:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer API key", code="api_key_missing")
    return authenticate(conn, token.strip())


TenantDep = Annotated[Tenant, Depends(get_tenant)]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


async def get_uploads(request: Request) -> Uploads:
    return request.app.state.uploads  # async: a sync dependency would cost a thread hop


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
UploadsDep = Annotated[Uploads, Depends(get_uploads)]
