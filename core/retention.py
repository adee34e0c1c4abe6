"""Retention of biometric data and of bookkeeping rows, pruned by the relay's sweeper.

- raw verify batches (blob, batch, job, score) older than the tenant's `retention_days`
  (or TACIT_RETENTION__VERIFY_DAYS); enrol batches live as long as a sample of theirs
  does (a template may need them again: ``tacit templates rebuild``), then as verify ones;
- published outbox rows, finished webhook messages (their deliveries and attempts),
  expired enrolment tokens, enrolment windows ended a day ago that no sample or open job
  refers to,
  and held samples that expired.

Every step is one bounded statement (`RetentionSettings.batch` rows) that skips rows
other transactions hold, so a sweep never waits on uploads or workers. Blobs go before
their rows, in the rows' transaction: a failure leaves the rows, and the next sweep
deletes them (deleting a missing object is no error).
"""

from __future__ import annotations

import uuid

from psycopg_pool import ConnectionPool

from core.db import DictConnection, transaction
from core.errors import InvalidInput
from core.settings import RetentionSettings
from core.storage import ObjectStore

MIN_DAYS, MAX_DAYS = 1, 3650

_OLD_BATCHES = (
    "SELECT b.id, b.object_key FROM batches b JOIN tenants t ON t.id = b.tenant_id JOIN jobs j ON j.batch_id = b.id"
    " WHERE b.received_at < now() - interval '1 day'"  # no policy is shorter: lets the index narrow the scan
    " AND b.received_at < now() - make_interval(days => coalesce(t.retention_days, %(days)s))"
    " AND j.status IN ('done', 'failed', 'dead')"
    " AND NOT EXISTS (SELECT 1 FROM enrolment_samples s WHERE s.batch_id = b.id)"
    " ORDER BY b.received_at LIMIT %(n)s FOR UPDATE OF b SKIP LOCKED"
)

_PRUNE = {
    "outbox": "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at IS NOT NULL"
    " AND published_at < now() - make_interval(secs => %(outbox_s)s) LIMIT %(n)s FOR UPDATE SKIP LOCKED)",
    "webhook_messages": "DELETE FROM webhook_messages WHERE id IN (SELECT m.id FROM webhook_messages m"
    " WHERE m.created_at < now() - make_interval(secs => %(webhook_s)s) AND NOT EXISTS (SELECT 1 FROM"
    " webhook_deliveries d WHERE d.message_id = m.id AND d.status = 'pending') LIMIT %(n)s FOR UPDATE SKIP LOCKED)",
    "enrolment_tokens": "DELETE FROM enrolment_tokens WHERE token_hash IN (SELECT token_hash FROM enrolment_tokens"
    " WHERE expires_at < now() LIMIT %(n)s FOR UPDATE SKIP LOCKED)",
    "held_samples": "DELETE FROM enrolment_samples WHERE job_id IN (SELECT job_id FROM enrolment_samples"
    " WHERE status = 'held' AND held_until < now() LIMIT %(n)s FOR UPDATE SKIP LOCKED)",
    # a window is where its samples came from: kept while one refers to it or an open job may
    "enrolment_windows": "DELETE FROM enrolment_windows WHERE id IN (SELECT w.id FROM enrolment_windows w"
    " WHERE coalesce(w.closed_at, w.expires_at) < now() - interval '1 day'"  # listed a day after it ended
    " AND NOT EXISTS (SELECT 1 FROM enrolment_samples s WHERE s.enrolment_id = w.id)"
    " AND NOT EXISTS (SELECT 1 FROM batches b JOIN jobs j ON j.batch_id = b.id WHERE b.enrolment_id = w.id"
    "  AND j.status IN ('queued', 'running'))"
    " LIMIT %(n)s FOR UPDATE SKIP LOCKED)",
}


def prune_batches(pool: ConnectionPool, store: ObjectStore, settings: RetentionSettings) -> int:
    """Delete one bounded batch of batches past their tenant's retention: blobs, then rows."""
    with transaction(pool) as conn:
        rows = conn.execute(
            _OLD_BATCHES, {"days": settings.verify_days, "n": settings.batch}
        ).fetchall()
        for r in rows:
            store.delete(r["object_key"])
        if rows:
            conn.execute("DELETE FROM batches WHERE id = ANY(%s)", ([r["id"] for r in rows],))
    return len(rows)


def prune_rows(pool: ConnectionPool, settings: RetentionSettings) -> dict[str, int]:
    """One bounded batch of each kind of bookkeeping row past its time; how many of each went."""
    params = {
        "outbox_s": settings.outbox_days * 86_400,
        "webhook_s": settings.webhook_days * 86_400,
        "n": settings.batch,
    }
    out = {}
    for name, sql in _PRUNE.items():
        with transaction(pool) as conn:
            out[name] = conn.execute(sql, params).rowcount
    return out


def sweep(pool: ConnectionPool, store: ObjectStore, settings: RetentionSettings) -> dict[str, int]:
    """One retention sweep: batches past the policy, then the bookkeeping rows."""
    return {"batches": prune_batches(pool, store, settings), **prune_rows(pool, settings)}


def get_retention_days(conn: DictConnection, *, tenant_id: uuid.UUID) -> int | None:
    row = conn.execute("SELECT retention_days FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    return None if row is None else row["retention_days"]


def set_retention_days(conn: DictConnection, *, tenant_id: uuid.UUID, days: int | None) -> None:
    """The tenant's own policy for raw verify batches; None falls back to the deployment's."""
    if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
        raise InvalidInput(
            f"retention_days must be between {MIN_DAYS} and {MAX_DAYS}", code="invalid_retention"
        )
    conn.execute("UPDATE tenants SET retention_days = %s WHERE id = %s", (days, tenant_id))
