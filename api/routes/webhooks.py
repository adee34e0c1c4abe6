"""Webhooks: a tenant's endpoints, their delivery log, and replaying a message."""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Path, Query, Response

from api.deps import ConnDep, SettingsDep, TenantDep
from api.schemas_webhooks import (
    AttemptOut,
    AttemptPage,
    EndpointCreate,
    EndpointOut,
    EndpointWithSecret,
    MessageOut,
    ReplayOut,
    RotateSecret,
)
from core.webhooks import deliveries
from core.webhooks import endpoints as repo
from core.webhooks.sealing import parse_key as parse_sealing_key

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
MessagePath = Path(min_length=1, max_length=100)


def _out(e: repo.Endpoint) -> EndpointOut:
    return EndpointOut(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=list(e.event_types),
        status=e.status,  # type: ignore[arg-type]
        disabled_reason=e.disabled_reason,
        disabled_at=e.disabled_at,
        failing_since=e.failing_since,
        previous_secret_expires_at=e.previous_secret_expires_at,
        created_at=e.created_at,
    )


@router.post("/endpoints", status_code=201, response_model=EndpointWithSecret)
def create_endpoint(
    body: EndpointCreate, tenant: TenantDep, conn: ConnDep, settings: SettingsDep
) -> EndpointWithSecret:
    """Register an endpoint. The URL must be https and resolve to public addresses."""
    e, secret = repo.create_endpoint(
        conn,
        tenant_id=tenant.id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        allowlist=settings.webhooks.allowlist,
        ports=settings.webhooks.ports,
        sealing_key=parse_sealing_key(settings.webhooks.secret_key),
    )
    return EndpointWithSecret(**_out(e).model_dump(), secret=secret)


@router.get("/endpoints", response_model=list[EndpointOut])
def list_endpoints(tenant: TenantDep, conn: ConnDep) -> list[EndpointOut]:
    return [_out(e) for e in repo.list_endpoints(conn, tenant_id=tenant.id)]


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> EndpointOut:
    """An endpoint; a disabled one says why in `disabled_reason`."""
    return _out(repo.get_endpoint(conn, tenant_id=tenant.id, endpoint_id=endpoint_id))


@router.delete("/endpoints/{endpoint_id}", status_code=204, response_class=Response)
def delete_endpoint(endpoint_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> Response:
    repo.delete_endpoint(conn, tenant_id=tenant.id, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
def rotate_secret(
    endpoint_id: uuid.UUID,
    tenant: TenantDep,
    conn: ConnDep,
    settings: SettingsDep,
    body: RotateSecret | None = None,
) -> EndpointWithSecret:
    """A new secret; the old one keeps signing (a second signature) for the grace period."""
    grace = (
        body.grace_s if body and body.grace_s is not None else settings.webhooks.rotation_grace_s
    )
    e, secret = repo.rotate_secret(
        conn,
        tenant_id=tenant.id,
        endpoint_id=endpoint_id,
        grace_s=grace,
        sealing_key=parse_sealing_key(settings.webhooks.secret_key),
    )
    return EndpointWithSecret(**_out(e).model_dump(), secret=secret)


@router.post("/endpoints/{endpoint_id}/enable", response_model=EndpointOut)
def enable_endpoint(endpoint_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> EndpointOut:
    """Enable a disabled endpoint again; replay its dead messages to catch up."""
    return _out(repo.enable(conn, tenant_id=tenant.id, endpoint_id=endpoint_id))


@router.get("/endpoints/{endpoint_id}/attempts", response_model=AttemptPage)
def list_attempts(
    endpoint_id: uuid.UUID,
    tenant: TenantDep,
    conn: ConnDep,
    limit: int = Query(default=100, ge=1, le=500),
    before: int | None = Query(default=None, ge=1),
) -> AttemptPage:
    """The endpoint's delivery log, newest first: status code, outcome, latency."""
    rows = deliveries.list_attempts(
        conn, tenant_id=tenant.id, endpoint_id=endpoint_id, limit=limit + 1, before=before
    )
    items = [AttemptOut(**r) for r in rows[:limit]]
    return AttemptPage(items=items, next_before=items[-1].id if len(rows) > limit else None)


@router.get("/messages/{message_id}", response_model=MessageOut)
def get_message(tenant: TenantDep, conn: ConnDep, message_id: str = MessagePath) -> MessageOut:
    """A message with the state of its delivery to each endpoint (dead ones with their reason)."""
    m = deliveries.get_message(conn, tenant_id=tenant.id, message_id=message_id)
    return MessageOut(**{**m, "payload": json.loads(m["payload"])})


@router.post("/messages/{message_id}/replay", status_code=202, response_model=ReplayOut)
def replay(tenant: TenantDep, conn: ConnDep, message_id: str = MessagePath) -> ReplayOut:
    """Send a message again (same webhook-id) to every enabled endpoint subscribed to its type."""
    n = deliveries.replay(conn, tenant_id=tenant.id, message_id=message_id)
    return ReplayOut(message_id=message_id, deliveries=n)
