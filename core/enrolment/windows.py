"""Enrolment windows: the tenant's server decides when a user's profile may change.

An enrol batch counts only if it arrives while a window is open for its user and factor
(and its device, when the window names one); otherwise the API refuses it before it
stores anything (409 ``enrolment_closed``). A phone alone can never change a profile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core import factors as registry
from core.db import AsyncDictConnection, DictConnection
from core.devices.service import check_uploading, get_device
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.settings import EnrolmentSettings
from core.users.service import get_or_create_user, get_user_id


@dataclass(frozen=True)
class Window:
    id: uuid.UUID
    user: str
    factors: tuple[str, ...]
    device_id: uuid.UUID | None
    replace: bool
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None

    @property
    def open(self) -> bool:
        return self.closed_at is None and self.expires_at > datetime.now(self.expires_at.tzinfo)


_SELECT = (
    "SELECT w.id, u.external_id AS user, w.factors, w.device_id, w.replace, w.created_at, w.expires_at,"
    " w.closed_at FROM enrolment_windows w JOIN users u ON u.id = w.user_id"
)


def _window(r: Any) -> Window:
    return Window(
        r["id"],
        r["user"],
        tuple(r["factors"]),
        r["device_id"],
        r["replace"],
        r["created_at"],
        r["expires_at"],
        r["closed_at"],
    )


def check_factors(factors: list[str]) -> list[str]:
    """Known factors, each once, in a stable order; unknown ones or none at all are refused."""
    if not factors:
        raise InvalidInput("name at least one factor", code="unknown_factor")
    unknown = sorted(set(factors) - set(registry.names()))
    if unknown:
        raise InvalidInput(
            f"unknown factors {unknown}; known: {list(registry.names())}", code="unknown_factor"
        )
    return [f for f in registry.names() if f in factors]


def open_window(
    conn: DictConnection,
    *,
    tenant_id: uuid.UUID,
    user_external_id: str,
    factors: list[str],
    ttl_s: int,
    settings: EnrolmentSettings,
    device_id: uuid.UUID | None = None,
    replace: bool = False,
) -> Window:
    """Open a window for one of the tenant's users (created on first use, like a token's user).

    Everything is checked before the first write: unknown factors, a ttl out of range, a
    device of another tenant (404, as if unknown), of another user, or revoked.
    """
    wanted = check_factors(factors)
    if not settings.min_ttl_s <= ttl_s <= settings.max_ttl_s:
        raise InvalidInput(
            f"ttl_s must be between {settings.min_ttl_s} and {settings.max_ttl_s}",
            code="invalid_ttl",
        )
    device = None
    if device_id is not None:
        device = get_device(
            conn, device_id=device_id, tenant_id=tenant_id
        )  # another tenant's: NotFound
        if device.user_external_id != user_external_id:
            raise InvalidInput("the device belongs to another user", code="device_of_another_user")
        if device.status != "active":
            raise Forbidden("device revoked", code="device_revoked")
    user_id = get_or_create_user(conn, tenant_id=tenant_id, external_id=user_external_id)
    window_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO enrolment_windows (id, tenant_id, user_id, device_id, factors, replace, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, now() + %s)",
        (window_id, tenant_id, user_id, device_id, wanted, replace, timedelta(seconds=ttl_s)),
    )
    return get_window(
        conn, tenant_id=tenant_id, user_external_id=user_external_id, window_id=window_id
    )


def get_window(
    conn: DictConnection, *, tenant_id: uuid.UUID, user_external_id: str, window_id: uuid.UUID
) -> Window:
    row = conn.execute(
        _SELECT + " WHERE w.id = %s AND w.tenant_id = %s AND u.external_id = %s",
        (window_id, tenant_id, user_external_id),
    ).fetchone()
    if row is None:
        raise NotFound("enrolment window not found", code="enrolment_not_found")
    return _window(row)


def list_windows(
    conn: DictConnection, *, tenant_id: uuid.UUID, user_external_id: str
) -> list[Window]:
    """The user's windows, newest first (open and closed); another tenant's user is 404."""
    user_id = get_user_id(conn, tenant_id=tenant_id, external_id=user_external_id)
    rows = conn.execute(
        _SELECT + " WHERE w.user_id = %s ORDER BY w.created_at DESC, w.id LIMIT 100", (user_id,)
    )
    return [_window(r) for r in rows.fetchall()]


def close_window(
    conn: DictConnection, *, tenant_id: uuid.UUID, user_external_id: str, window_id: uuid.UUID
) -> Window:
    """Close a window early; closing a closed or expired one changes nothing."""
    window = get_window(
        conn, tenant_id=tenant_id, user_external_id=user_external_id, window_id=window_id
    )
    conn.execute(
        "UPDATE enrolment_windows SET closed_at = least(now(), expires_at) WHERE id = %s AND closed_at IS NULL",
        (window.id,),
    )
    return get_window(
        conn, tenant_id=tenant_id, user_external_id=user_external_id, window_id=window_id
    )


_OPEN = (
    "SELECT (SELECT status FROM devices WHERE id = %(d)s) AS device_status,"
    " (SELECT id FROM enrolment_windows WHERE user_id = %(u)s AND %(f)s = ANY(factors)"
    " AND (device_id IS NULL OR device_id = %(d)s) AND closed_at IS NULL AND expires_at > now()"
    " ORDER BY created_at DESC LIMIT 1) AS window_id"
)


async def find_open_window(
    conn: AsyncDictConnection, *, user_id: uuid.UUID, device_id: uuid.UUID, factor: str
) -> uuid.UUID | None:
    """The newest window open now for this user, factor and device; None when there is none.

    A device that is gone or revoked is refused first (404, 403), as the upload itself would be.
    """
    row = await (await conn.execute(_OPEN, {"u": user_id, "f": factor, "d": device_id})).fetchone()
    assert row is not None
    check_uploading(row["device_status"])
    return row["window_id"]


def enrolment_closed() -> Conflict:
    return Conflict(
        "no enrolment window is open for this user, factor and device; the tenant opens one",
        code="enrolment_closed",
    )
