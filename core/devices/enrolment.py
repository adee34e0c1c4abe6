"""One-time enrolment tokens: the tenant asks for one for its user, the phone redeems it.

Only a SHA-256 hash of a token is stored. Redeeming is one UPDATE that matches an
unused, unexpired token and marks it used, so two phones racing with the same token
cannot both get a device.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.db import DictConnection
from core.devices.service import Device, get_device
from core.errors import NotFound
from core.users.service import get_or_create_user

TOKEN_PREFIX = "enr_"
DEFAULT_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    expires_at: datetime


def _hash(token: str) -> bytes:
    # Tokens carry 256 random bits, so a fast hash is as strong as a slow one.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def issue_token(
    conn: DictConnection,
    *,
    tenant_id: uuid.UUID,
    user_external_id: str,
    ttl: timedelta = DEFAULT_TTL,
) -> IssuedToken:
    """A fresh single-use token for one of the tenant's users (the user is created on first use)."""
    user_id = get_or_create_user(conn, tenant_id=tenant_id, external_id=user_external_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC).replace(microsecond=0) + ttl
    conn.execute(
        "INSERT INTO enrolment_tokens (token_hash, tenant_id, user_id, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (_hash(token), tenant_id, user_id, expires_at),
    )
    return IssuedToken(token, expires_at)


def redeem_token(conn: DictConnection, *, token: str, public_key: bytes) -> Device:
    """Use a token up and register a device with `public_key` for the token's user.

    Unknown, expired and used tokens all answer the same (`enrolment_token_invalid`),
    so the answer tells a guesser nothing.
    """
    row: dict[str, Any] | None = conn.execute(  # type: ignore[assignment] # dict_row connections
        "UPDATE enrolment_tokens SET redeemed_at = now()"
        " WHERE token_hash = %s AND redeemed_at IS NULL AND expires_at > now()"
        " RETURNING tenant_id, user_id",
        (_hash(token),),
    ).fetchone()
    if row is None:
        raise NotFound(
            "enrolment token unknown, expired or already used", code="enrolment_token_invalid"
        )
    device_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO devices (id, tenant_id, user_id, public_key) VALUES (%s, %s, %s, %s)",
        (device_id, row["tenant_id"], row["user_id"], public_key),
    )
    conn.execute(
        "UPDATE enrolment_tokens SET device_id = %s WHERE token_hash = %s",
        (device_id, _hash(token)),
    )
    return get_device(conn, device_id=device_id)
