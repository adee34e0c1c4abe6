"""A tenant's devices: create for a user, list, revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Path, Query

from api.deps import ConnDep, TenantDep
from api.schemas import DeviceCreate, DeviceOut
from core.devices.service import Device, create_device, get_device, list_devices
from core.enrolment.revocation import revoke as revoke_device
from core.errors import InvalidInput
from core.protocol.keyring import b64url_decode
from core.protocol.signing import check_device_public_key
from core.users.service import get_user_id

router = APIRouter(tags=["devices"])
UserPath = Path(min_length=1, max_length=200)


def _out(d: Device) -> DeviceOut:
    return DeviceOut(id=d.id, user=d.user_external_id, status=d.status, created_at=d.created_at)  # type: ignore[arg-type]


def _public_key(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        raw = b64url_decode(value)
        check_device_public_key(raw)
    except ValueError as e:
        raise InvalidInput(f"public_key: {e}", code="invalid_public_key") from None
    return raw


@router.post("/v1/users/{user}/devices", status_code=201, response_model=DeviceOut)
def create(tenant: TenantDep, conn: ConnDep, body: DeviceCreate, user: str = UserPath) -> DeviceOut:
    """Register a device for one of the tenant's users (created on first use)."""
    return _out(
        create_device(
            conn,
            tenant_id=tenant.id,
            user_external_id=user,
            public_key=_public_key(body.public_key),
        )
    )


@router.get("/v1/devices", response_model=list[DeviceOut])
def list_(
    tenant: TenantDep, conn: ConnDep, user: str | None = Query(default=None, max_length=200)
) -> list[DeviceOut]:
    return [_out(d) for d in list_devices(conn, tenant_id=tenant.id, user_external_id=user)]


@router.get("/v1/users/{user}/devices", response_model=list[DeviceOut])
def list_for_user(tenant: TenantDep, conn: ConnDep, user: str = UserPath) -> list[DeviceOut]:
    """One user's devices; another tenant's user is 404 like an unknown one."""
    get_user_id(conn, tenant_id=tenant.id, external_id=user)
    return [_out(d) for d in list_devices(conn, tenant_id=tenant.id, user_external_id=user)]


@router.get("/v1/devices/{device_id}", response_model=DeviceOut)
def read(device_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> DeviceOut:
    """One of the tenant's devices; another tenant's device is 404 like an unknown one."""
    return _out(get_device(conn, device_id=device_id, tenant_id=tenant.id))


@router.delete("/v1/devices/{device_id}", response_model=DeviceOut)
def revoke(device_id: uuid.UUID, tenant: TenantDep, conn: ConnDep) -> DeviceOut:
    """Revoke a device: its uploads are refused from now on (403 device_revoked), its open jobs
    end `device_revoked`, its enrolment samples leave every template (rebuilt from the rest)
    and its scores leave the user's trust."""
    return _out(revoke_device(conn, tenant_id=tenant.id, device_id=device_id))
