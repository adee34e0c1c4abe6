"""Scores (enrolment samples and templates: ``core.enrolment.templates``). Every write is keyed so a replay
changes nothing."""

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
            row.job_id,
            row.tenant_id,
            row.user_id,
            row.factor,
            row.score,
            row.distance,
            row.llr,
            row.decision,
            row.samples,
            row.model_version,
            row.captured_at,
        ),
    )
    return cur.rowcount == 1


def lock_user_factor(conn: DictConnection, user_id: uuid.UUID, factor: str) -> None:
    """Serialise template rebuilds of one user and factor for the rest of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{user_id}:{factor}",))
