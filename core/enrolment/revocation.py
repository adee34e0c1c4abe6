"""Revoking a device reaches everything it touched, in the request's one transaction.

- its uploads are refused from the commit on: every upload's own statement reads the
  device's status (``core.batches.service``), whatever an API process has cached;
- its open jobs are not scored: a worker's claim reads the device too and ends them
  ``failed`` with ``device_revoked``;
- its enrolment samples (active and held) are removed and a rebuild of every template
  they were in is owed; its windows close;
- its scores stop counting in its user's trust (``core.trust.service`` leaves out the
  jobs of revoked devices, also those claimed a moment before and finished after).
"""

from __future__ import annotations

import uuid

from core.db import DictConnection
from core.devices.service import Device, revoke_device
from core.enrolment.templates import request_rebuild


def revoke(conn: DictConnection, *, tenant_id: uuid.UUID, device_id: uuid.UUID) -> Device:
    """Revoke one of the tenant's devices (again: no change) and take its samples out of templates."""
    device = revoke_device(
        conn, tenant_id=tenant_id, device_id=device_id
    )  # locks the row: workers wait for us
    removed = conn.execute(
        "DELETE FROM enrolment_samples WHERE device_id = %s RETURNING user_id, factor", (device_id,)
    ).fetchall()
    for user_id, factor in sorted({(r["user_id"], r["factor"]) for r in removed}):
        request_rebuild(
            conn, user_id=user_id, tenant_id=tenant_id, factor=factor, reason="device_revoked"
        )
    conn.execute(
        "UPDATE enrolment_windows SET closed_at = now() WHERE device_id = %s AND closed_at IS NULL"
        " AND expires_at > now()",
        (device_id,),
    )
    return device
