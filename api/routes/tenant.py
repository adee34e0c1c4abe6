"""The calling tenant's own policies: how long raw verify batches are kept."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ConnDep, SettingsDep, TenantDep
from core.retention import get_retention_days, set_retention_days

router = APIRouter(tags=["tenant"])


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    decision_threshold: float
    retention_days: int = Field(
        description="raw verify batches (blobs and rows) older than this are deleted"
    )
    retention_days_set: bool = Field(description="false: the deployment's default applies")


class TenantPatch(BaseModel):
    retention_days: int | None = Field(description="1 to 3650; null: the deployment's default")


def _out(conn, tenant, settings) -> TenantOut:  # type: ignore[no-untyped-def]
    days = get_retention_days(conn, tenant_id=tenant.id)
    return TenantOut(
        id=tenant.id,
        name=tenant.name,
        decision_threshold=tenant.decision_threshold,
        retention_days=days if days is not None else settings.retention.verify_days,
        retention_days_set=days is not None,
    )


@router.get(
    "/v1/tenant",
    response_model=TenantOut,
    responses={401: {"description": "API key missing or invalid"}},
)
def read(tenant: TenantDep, conn: ConnDep, settings: SettingsDep) -> TenantOut:
    """The calling tenant and its retention policy."""
    return _out(conn, tenant, settings)


@router.patch(
    "/v1/tenant",
    response_model=TenantOut,
    responses={
        401: {"description": "API key missing or invalid"},
        422: {"description": "invalid_retention"},
    },
)
def update(tenant: TenantDep, conn: ConnDep, settings: SettingsDep, body: TenantPatch) -> TenantOut:
    """Set how many days raw verify batches are kept (enrolment batches live as long as their template)."""
    set_retention_days(conn, tenant_id=tenant.id, days=body.retention_days)
    return _out(conn, tenant, settings)
