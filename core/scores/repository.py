"""Scores, enrolment samples and templates. Every write is keyed so a replay changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from core.db import DictConnection


@dataclass(frozen=True)
class ScoreRow:
    job_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    factor: str
    score: float
    distance: float
    llr: float
    decision: bool
    samples: int
    model_version: str
    captured_at: datetime | None


def insert_score(conn: DictConnection, row: ScoreRow) -> bool:
    """Write a job's score once; False if the job already had one."""
    cur = conn.execute(
        "INSERT INTO scores (job_id, tenant_id, user_id, factor, score, distance, llr, decision, samples,"
        " model_version, captured_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (job_id) DO NOTHING",
        (
            row.job_id, row.tenant_id, row.user_id, row.factor, row.score, row.distance, row.llr,
            row.decision, row.samples, row.model_version, row.captured_at,
        ),
    )
    return cur.rowcount == 1


def lock_user_factor(conn: DictConnection, user_id: uuid.UUID, factor: str) -> None:
    """Serialise template rebuilds of one user and factor for the rest of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{user_id}:{factor}",))


def insert_enrolment_sample(
    conn: DictConnection, *, job_id: uuid.UUID, tenant_id: uuid.UUID, user_id: uuid.UUID,
    factor: str, model_version: str, embeddings: bytes, samples: int,
) -> bool:
    cur = conn.execute(
        "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING",
        (job_id, tenant_id, user_id, factor, model_version, embeddings, samples),
    )
    return cur.rowcount == 1


def enrolment_samples(conn: DictConnection, *, user_id: uuid.UUID, factor: str, model_version: str) -> list[bytes]:
    rows = conn.execute(
        "SELECT embeddings FROM enrolment_samples WHERE user_id = %s AND factor = %s AND model_version = %s"
        " ORDER BY created_at, job_id",
        (user_id, factor, model_version),
    ).fetchall()
    return [bytes(r["embeddings"]) for r in rows]


def upsert_template(
    conn: DictConnection, *, user_id: uuid.UUID, tenant_id: uuid.UUID, factor: str,
    model_version: str, data: bytes, samples: int,
) -> None:
    conn.execute(
        "INSERT INTO templates (user_id, factor, tenant_id, model_version, data, samples)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, factor) DO UPDATE SET"
        " model_version = EXCLUDED.model_version, data = EXCLUDED.data, samples = EXCLUDED.samples,"
        " updated_at = now()",
        (user_id, factor, tenant_id, model_version, data, samples),
    )


def load_template(conn: DictConnection, *, user_id: uuid.UUID, factor: str) -> tuple[str, bytes] | None:
    row = conn.execute(
        "SELECT model_version, data FROM templates WHERE user_id = %s AND factor = %s", (user_id, factor)
    ).fetchone()
    return None if row is None else (row["model_version"], bytes(row["data"]))
