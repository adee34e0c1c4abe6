"""Enrolment: the tenant asks for a one-time token for its user; the phone redeems it."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ConnDep, TenantDep
from api.routes.devices import UserPath
from core.devices.enrolment import issue_token, redeem_token
from core.protocol.signing import verify_redemption

router = APIRouter(tags=["enrolment"])


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
