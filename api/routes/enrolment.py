"""Enrolment: the tenant asks for a one-time token for its user; the phone redeems it."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import ConnDep, SettingsDep, TenantDep
from api.routes.devices import UserPath
from core.devices.enrolment import issue_token, redeem_token
from core.enrolment import templates, windows
from core.protocol.signing import verify_redemption

router = APIRouter(tags=["enrolment"])
FactorPath = Path(min_length=1, max_length=64)


class EnrolmentToken(BaseModel):
    token: str = Field(description="Single use; hand it to the app over your own channel")
    expires_at: datetime


class Redeem(BaseModel):
    token: str = Field(max_length=512)
    public_key: str = Field(max_length=64, description="Ed25519 public key, base64url (32 bytes)")
    proof: str = Field(
        max_length=128,
        description='Ed25519 signature of "TACIT-REDEEM-V1\\n" + token + "\\n" + public_key',
    )


class Redeemed(BaseModel):
    device_id: uuid.UUID
    tenant_id: uuid.UUID


@router.post("/v1/users/{user}/enrolment-tokens", status_code=201, response_model=EnrolmentToken)
def create_token(tenant: TenantDep, conn: ConnDep, user: str = UserPath) -> EnrolmentToken:
    """A one-time enrolment token for one of the tenant's users (created on first use)."""
    issued = issue_token(conn, tenant_id=tenant.id, user_external_id=user)
    return EnrolmentToken(token=issued.token, expires_at=issued.expires_at)


@router.post("/v1/devices/redeem", status_code=201, response_model=Redeemed)
def redeem(body: Redeem, conn: ConnDep) -> Redeemed:
    """A phone trades a token and proof of its key for a device id (the token is the credential)."""
    # The proof is checked before the token is touched, so a bad proof does not use it up.
    public_key = verify_redemption(body.model_dump())
    device = redeem_token(conn, token=body.token, public_key=public_key)
    return Redeemed(device_id=device.id, tenant_id=device.tenant_id)


class WindowCreate(BaseModel):
    factors: list[str] = Field(
        max_length=16, description="factors whose enrol batches count while it is open"
    )
    ttl_s: int | None = Field(
        default=None, description="seconds it stays open (60 to 604800; 900 if omitted)"
    )
    device_id: uuid.UUID | None = Field(
        default=None, description="only this device's enrol batches count"
    )
    replace: bool = Field(
        default=False, description="its samples start the profile afresh (lost-phone recovery)"
    )


class WindowOut(BaseModel):
    enrolment_id: uuid.UUID
    user: str
    factors: list[str]
    device_id: uuid.UUID | None
    replace: bool
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    open: bool


def _window_out(w: windows.Window) -> WindowOut:
    return WindowOut(
        enrolment_id=w.id,
        user=w.user,
        factors=list(w.factors),
        device_id=w.device_id,
        replace=w.replace,
        created_at=w.created_at,
        expires_at=w.expires_at,
        closed_at=w.closed_at,
        open=w.open,
    )


_WINDOW_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "API key missing or invalid"},
    403: {"description": "device revoked (device_revoked)"},
    404: {"description": "unknown device, user or window"},
    422: {"description": "unknown factor, ttl out of range, device of another user"},
}


@router.post(
    "/v1/users/{user}/enrolments",
    status_code=201,
    response_model=WindowOut,
    responses=_WINDOW_ERRORS,
)
def open_window(
    tenant: TenantDep,
    conn: ConnDep,
    settings: SettingsDep,
    body: WindowCreate,
    user: str = UserPath,
) -> WindowOut:
    """Open an enrolment window: while it is open, the user's enrol batches of its factors count."""
    ttl = body.ttl_s if body.ttl_s is not None else settings.enrolment.default_ttl_s
    return _window_out(
        windows.open_window(
            conn,
            tenant_id=tenant.id,
            user_external_id=user,
            factors=body.factors,
            ttl_s=ttl,
            settings=settings.enrolment,
            device_id=body.device_id,
            replace=body.replace,
        )
    )


@router.get("/v1/users/{user}/enrolments", response_model=list[WindowOut], responses=_WINDOW_ERRORS)
def list_windows(tenant: TenantDep, conn: ConnDep, user: str = UserPath) -> list[WindowOut]:
    """The user's enrolment windows, newest first."""
    return [
        _window_out(w)
        for w in windows.list_windows(conn, tenant_id=tenant.id, user_external_id=user)
    ]


@router.delete(
    "/v1/users/{user}/enrolments/{enrolment_id}", response_model=WindowOut, responses=_WINDOW_ERRORS
)
def close_window(
    enrolment_id: uuid.UUID, tenant: TenantDep, conn: ConnDep, user: str = UserPath
) -> WindowOut:
    """Close a window early: enrol batches arriving from now on are refused (409 enrolment_closed)."""
    return _window_out(
        windows.close_window(
            conn, tenant_id=tenant.id, user_external_id=user, window_id=enrolment_id
        )
    )


class TemplateOut(BaseModel):
    factor: str
    model_version: str
    samples: int = Field(description="enrolment samples the template was built from")
    devices: list[uuid.UUID] = Field(description="devices whose samples it holds")
    updated_at: datetime
    version: int = Field(description="goes up on every rebuild")
    held: int = Field(description="held samples waiting for accept-held (or to expire)")


class HeldAccepted(BaseModel):
    accepted: int = Field(description="held samples that join the template, rebuilt shortly after")


@router.get(
    "/v1/users/{user}/templates", response_model=list[TemplateOut], responses=_WINDOW_ERRORS
)
def list_templates(tenant: TenantDep, conn: ConnDep, user: str = UserPath) -> list[TemplateOut]:
    """The user's templates, one per factor, with where their samples came from."""
    return [
        TemplateOut(**asdict(t))
        for t in templates.list_templates(conn, tenant_id=tenant.id, user_external_id=user)
    ]


@router.post(
    "/v1/users/{user}/templates/{factor}/accept-held",
    response_model=HeldAccepted,
    responses=_WINDOW_ERRORS,
)
def accept_held(
    tenant: TenantDep, conn: ConnDep, factor: str = FactorPath, user: str = UserPath
) -> HeldAccepted:
    """Vouch for the user's held samples of one factor: they join the template (a rebuild is queued)."""
    return HeldAccepted(
        accepted=templates.accept_held(
            conn, tenant_id=tenant.id, user_external_id=user, factor=factor
        )
    )
