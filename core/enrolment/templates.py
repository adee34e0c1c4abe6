"""Enrolment samples with their provenance, versioned templates, held samples and rebuilds.

Every sample knows its device, batch and window. A template is always rebuilt from the
active samples of the current model version (newest `max_samples`), its version bumped
and `template.changed` sent. What needs a model (building, re-embedding) runs in the
factor's worker pool; the API only records that a rebuild is owed (``template_rebuilds``)
and the relay hands it to the pool.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.db import DictConnection
from core.enrolment.windows import check_factors
from core.users.service import get_user_id


@dataclass(frozen=True)
class TemplateView:
    factor: str
    model_version: str
    samples: int
    devices: list[uuid.UUID]
    updated_at: datetime
    version: int
    held: int  # held samples not yet accepted or expired


@dataclass(frozen=True)
class SampleRow:
    job_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    factor: str
    model_version: str
    embeddings: bytes
    samples: int
    device_id: uuid.UUID
    batch_id: uuid.UUID
    enrolment_id: uuid.UUID | None
    held_for: timedelta | None = None  # set: the sample is held that long


def insert_sample(conn: DictConnection, s: SampleRow) -> bool:
    """Write a job's sample once (a replay changes nothing)."""
    cur = conn.execute(
        "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples,"
        " device_id, batch_id, enrolment_id, status, held_until)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + %s) ON CONFLICT (job_id) DO NOTHING",
        (
            s.job_id,
            s.tenant_id,
            s.user_id,
            s.factor,
            s.model_version,
            s.embeddings,
            s.samples,
            s.device_id,
            s.batch_id,
            s.enrolment_id,
            "held" if s.held_for is not None else "active",
            s.held_for,
        ),
    )
    return cur.rowcount == 1


def active_samples(
    conn: DictConnection, *, user_id: uuid.UUID, factor: str, model_version: str, limit: int
) -> list[tuple[bytes, uuid.UUID]]:
    """(embeddings, device id) of the newest `limit` active samples of the model version, oldest first.

    In the order they were captured (the batch's capture window), not the order their jobs
    committed: concurrent enrol jobs commit in any order, and a template that models drift
    (keystroke) would otherwise depend on it.
    """
    rows = conn.execute(
        "SELECT embeddings, device_id FROM (SELECT s.embeddings, s.device_id, s.job_id,"
        " coalesce(b.captured_to, s.created_at) AS at FROM enrolment_samples s LEFT JOIN batches b ON b.id = s.batch_id"
        " WHERE s.user_id = %s AND s.factor = %s AND s.model_version = %s AND s.status = 'active'"
        " ORDER BY at DESC, s.job_id DESC LIMIT %s) s ORDER BY at, job_id",
        (user_id, factor, model_version, limit),
    ).fetchall()
    return [(bytes(r["embeddings"]), r["device_id"]) for r in rows]


def drop_beyond_newest(
    conn: DictConnection, *, user_id: uuid.UUID, factor: str, model_version: str, keep: int
) -> int:
    """Active samples past the newest `keep` are in no template: they go (their batches then
    age out under the retention policy)."""
    cur = conn.execute(
        "DELETE FROM enrolment_samples WHERE job_id IN (SELECT s.job_id FROM enrolment_samples s"
        " LEFT JOIN batches b ON b.id = s.batch_id"
        " WHERE s.user_id = %s AND s.factor = %s AND s.model_version = %s AND s.status = 'active'"
        " ORDER BY coalesce(b.captured_to, s.created_at) DESC, s.job_id DESC OFFSET %s)",
        (user_id, factor, model_version, keep),
    )
    return cur.rowcount


def drop_samples_outside(
    conn: DictConnection, *, user_id: uuid.UUID, factor: str, enrolment_id: uuid.UUID
) -> int:
    """A `replace` window starts the profile afresh: the samples of any other window go."""
    cur = conn.execute(
        "DELETE FROM enrolment_samples WHERE user_id = %s AND factor = %s"
        " AND enrolment_id IS DISTINCT FROM %s",
        (user_id, factor, enrolment_id),
    )
    return cur.rowcount


def save_template(
    conn: DictConnection,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    factor: str,
    model_version: str,
    data: bytes,
    samples: int,
) -> int:
    """Write the template, one version up; returns its version."""
    row = conn.execute(
        "INSERT INTO templates (user_id, factor, tenant_id, model_version, data, samples)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, factor) DO UPDATE SET"
        " model_version = EXCLUDED.model_version, data = EXCLUDED.data, samples = EXCLUDED.samples,"
        " version = templates.version + 1, updated_at = now() RETURNING version",
        (user_id, factor, tenant_id, model_version, data, samples),
    ).fetchone()
    assert row is not None
    return int(row["version"])


def drop_template(conn: DictConnection, *, user_id: uuid.UUID, factor: str) -> int | None:
    """Too few samples left for a template: it is emptied (kept, so versions only go up); its
    new version, or None if there was no template to empty."""
    row = conn.execute(
        "UPDATE templates SET data = '', samples = 0, version = version + 1, updated_at = now()"
        " WHERE user_id = %s AND factor = %s AND samples > 0 RETURNING version",
        (user_id, factor),
    ).fetchone()
    return None if row is None else int(row["version"])


def load_template(
    conn: DictConnection, *, user_id: uuid.UUID, factor: str
) -> tuple[str, bytes, str | None] | None:
    """(model version, data, the rebuild owed: None, 'rebuild' or 'reembed') of the user's template, if any."""
    row = conn.execute(
        "SELECT t.model_version, t.data, CASE WHEN r.user_id IS NULL THEN NULL WHEN r.reembed THEN 'reembed'"
        " ELSE 'rebuild' END AS owed FROM templates t"
        " LEFT JOIN template_rebuilds r ON r.user_id = t.user_id AND r.factor = t.factor"
        " WHERE t.user_id = %s AND t.factor = %s AND t.samples > 0",  # an emptied template is none
        (user_id, factor),
    ).fetchone()
    return None if row is None else (row["model_version"], bytes(row["data"]), row["owed"])


def request_rebuild(
    conn: DictConnection,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    factor: str,
    reason: str,
    reembed: bool = False,
) -> None:
    """Record that the user's template of `factor` must be rebuilt; the relay hands it to the pool."""
    conn.execute(
        "INSERT INTO template_rebuilds (user_id, factor, tenant_id, reembed, reason) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id, factor) DO UPDATE SET reembed = template_rebuilds.reembed OR EXCLUDED.reembed,"
        " reason = EXCLUDED.reason, requested_at = now(), published_at = NULL",
        (user_id, factor, tenant_id, reembed, reason),
    )


def owed_rebuild(conn: DictConnection, *, user_id: uuid.UUID, factor: str) -> dict[str, Any] | None:
    """The rebuild owed for the user's factor, locked until the transaction ends; None when none is."""
    row = conn.execute(
        "SELECT reembed, reason, requested_at FROM template_rebuilds WHERE user_id = %s AND factor = %s FOR UPDATE",
        (user_id, factor),
    ).fetchone()
    return None if row is None else dict(row)


def rebuild_done(
    conn: DictConnection, *, user_id: uuid.UUID, factor: str, requested_at: datetime
) -> None:
    """The rebuild asked for at `requested_at` is done (a request made since stays owed)."""
    conn.execute(
        "DELETE FROM template_rebuilds WHERE user_id = %s AND factor = %s AND requested_at = %s",
        (user_id, factor, requested_at),
    )


def list_templates(
    conn: DictConnection, *, tenant_id: uuid.UUID, user_external_id: str
) -> list[TemplateView]:
    """The user's templates with who contributed to them; another tenant's user is 404."""
    user_id = get_user_id(conn, tenant_id=tenant_id, external_id=user_external_id)
    rows = conn.execute(
        "SELECT t.factor, t.model_version, t.samples, t.updated_at, t.version,"
        " coalesce((SELECT array_agg(DISTINCT s.device_id) FROM enrolment_samples s WHERE s.user_id = t.user_id"
        "  AND s.factor = t.factor AND s.model_version = t.model_version AND s.status = 'active'"
        "  AND s.device_id IS NOT NULL), '{}') AS devices,"
        " (SELECT count(*) FROM enrolment_samples s WHERE s.user_id = t.user_id AND s.factor = t.factor"
        "  AND s.status = 'held' AND s.held_until > now()) AS held"
        " FROM templates t WHERE t.user_id = %s ORDER BY t.factor",
        (user_id,),
    ).fetchall()
    return [
        TemplateView(
            r["factor"],
            r["model_version"],
            r["samples"],
            sorted(r["devices"], key=str),
            r["updated_at"],
            r["version"],
            int(r["held"]),
        )
        for r in rows
    ]


def accept_held(
    conn: DictConnection, *, tenant_id: uuid.UUID, user_external_id: str, factor: str
) -> int:
    """The tenant vouches for the user's held samples of `factor`: they join the template (rebuilt)."""
    (factor,) = check_factors([factor])
    user_id = get_user_id(conn, tenant_id=tenant_id, external_id=user_external_id)
    cur = conn.execute(
        "UPDATE enrolment_samples SET status = 'active', held_until = NULL"
        " WHERE user_id = %s AND factor = %s AND status = 'held' AND held_until > now()",
        (user_id, factor),
    )
    if cur.rowcount:
        request_rebuild(
            conn, user_id=user_id, tenant_id=tenant_id, factor=factor, reason="held_accepted"
        )
    return cur.rowcount


@dataclass(frozen=True)
class StoredSample:
    """An enrolment sample of an older model version, and the stored batch it came from."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    device_id: uuid.UUID
    factor: str
    model_version: str
    object_key: str
    key_id: str | None
    client_batch_id: uuid.UUID
    created_at: datetime


def outdated_samples(
    conn: DictConnection, *, user_id: uuid.UUID, factor: str, model_version: str
) -> list[StoredSample]:
    """The user's samples of `factor` embedded by another model version, with their stored batch."""
    rows = conn.execute(
        "SELECT s.job_id, s.tenant_id, s.user_id, b.device_id, s.factor, s.model_version, b.object_key, b.key_id,"
        " b.client_batch_id, j.created_at FROM enrolment_samples s JOIN jobs j ON j.id = s.job_id"
        " JOIN batches b ON b.id = j.batch_id"
        " WHERE s.user_id = %s AND s.factor = %s AND s.model_version <> %s ORDER BY s.created_at, s.job_id",
        (user_id, factor, model_version),
    ).fetchall()
    return [
        StoredSample(
            r["job_id"],
            r["tenant_id"],
            r["user_id"],
            r["device_id"],
            r["factor"],
            r["model_version"],
            r["object_key"],
            r["key_id"],
            r["client_batch_id"],
            r["created_at"],
        )
        for r in rows
    ]


def replace_embeddings(
    conn: DictConnection,
    *,
    job_id: uuid.UUID,
    old_version: str,
    model_version: str,
    embeddings: bytes,
    samples: int,
) -> bool:
    """The sample re-embedded by `model_version` (once: a second run finds it current already)."""
    cur = conn.execute(
        "UPDATE enrolment_samples SET model_version = %s, embeddings = %s, samples = %s"
        " WHERE job_id = %s AND model_version = %s",
        (model_version, embeddings, samples, job_id, old_version),
    )
    return cur.rowcount == 1


def request_reembedding(
    conn: DictConnection,
    *,
    factor: str | None = None,
    user_external_id: str | None = None,
    tenant_id: uuid.UUID | None = None,
) -> list[tuple[uuid.UUID, str]]:
    """Owe a re-embedding for every (user, factor) with enrolment samples, filtered; the pairs."""
    sql = "SELECT DISTINCT s.user_id, s.factor, s.tenant_id FROM enrolment_samples s JOIN users u ON u.id = s.user_id"
    where: list[str] = []
    params: list[object] = []
    if factor is not None:
        where.append("s.factor = %s")
        params.append(factor)
    if user_external_id is not None:
        where.append("u.external_id = %s")
        params.append(user_external_id)
    if tenant_id is not None:
        where.append("s.tenant_id = %s")
        params.append(tenant_id)
    rows = conn.execute(sql + (" WHERE " + " AND ".join(where) if where else ""), params).fetchall()
    for r in rows:
        request_rebuild(
            conn,
            user_id=r["user_id"],
            tenant_id=r["tenant_id"],
            factor=r["factor"],
            reason="model_upgrade",
            reembed=True,
        )
    return [(r["user_id"], r["factor"]) for r in rows]


def rebuilds_left(conn: DictConnection, pairs: list[tuple[uuid.UUID, str]]) -> int:
    """How many of these (user, factor) rebuilds are still owed."""
    if not pairs:
        return 0
    row = conn.execute(
        "SELECT count(*) AS n FROM template_rebuilds r JOIN unnest(%s::uuid[], %s::text[]) AS p(u, f)"
        " ON r.user_id = p.u AND r.factor = p.f",
        ([u for u, _ in pairs], [f for _, f in pairs]),
    ).fetchone()
    assert row is not None
    return int(row["n"])
