"""A tenant's devices: create for a user, list, revoke."""

from __future__ import annotations

import base64
import binascii
import uuid

from fastapi import APIRouter, Path, Query

from api.deps import ConnDep, TenantDep
from api.schemas import DeviceCreate, DeviceOut
from core.devices.service import Device, create_device, list_devices, revoke_device
from core.errors import InvalidInput

router = APIRouter(tags=["devices"])
UserPath = Path(min_length=1, max_length=200)


def _out(d: Device) -> DeviceOut:
    return DeviceOut(id=d.id, user=d.user_external_id, status=d.status, created_at=d.created_at)  # type: ignore[arg-type]


def _public_key(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput("public_key is not base64url", code="invalid_public_key") from None
    if len(raw) != 32:
        raise InvalidInput("public_key must be 32 bytes (Ed25519)", code="invalid_public_key")
    return raw


@router.post("/v1/users/{user}/devices", status_code=201, response_model=DeviceOut)
def create(tenant: TenantDep, conn: ConnDep, body: DeviceCreate, user: str = UserPath) -> DeviceOut:
    """Register a device for one of the tenant's users (created on first use)."""
    return _out(create_device(conn, tenant_id=tenant.id, user_external_id=user, public_key=_public_key(body.public_key)))


@router.get("/v1/devices", response_model=list[DeviceOut])
def list_(tenant: TenantDep, conn: ConnDep, user: str | None = Query(default=None, max_length=200)) -> list[DeviceOut]:
    return [_out(d) for d in list_devices(conn, tenant_id=tenant.id, user_external_id=user)]


@router.delete("/v1/devices/{device_id}", response_model=DeviceOut)
def revoke(device_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> DeviceOut:
    """Revoke a device: its uploads are refused from now on (403 device_revoked)."""
    return _out(revoke_device(conn, tenant_id=tenant.id, device_id=device_id))
