"""Reading a user's trust: the recent score rows of one user, fused at the database's clock."""

from __future__ import annotations

import uuid

import psycopg
from psycopg.rows import DictRow

from core.settings import TrustSettings
from core.trust.fusion import FusionParams, ScoreSample, TrustScore, fuse


def recent_samples(
    conn: psycopg.Connection[DictRow], *, user_id: uuid.UUID, max_age_s: float, max_samples: int
) -> list[ScoreSample]:
    """The newest scores of each factor of the user, at most `max_samples` per factor.

    Evidence counts from its capture time, but never later than when the server scored
    it, so a device clock cannot make old behaviour look fresh.
    """
    rows = conn.execute(
        "SELECT factor, score, llr, at FROM ("
        " SELECT factor, score, llr, LEAST(coalesce(captured_at, created_at), created_at) AS at,"
        " row_number() OVER (PARTITION BY factor"
        "  ORDER BY LEAST(coalesce(captured_at, created_at), created_at) DESC, job_id) AS rn"
        " FROM scores WHERE user_id = %s AND created_at > now() - make_interval(secs => %s)"
        # a revoked device's scores never count, also those of jobs it had running when revoked
        " AND job_id NOT IN (SELECT j.id FROM devices d JOIN batches b ON b.device_id = d.id"
        "  JOIN jobs j ON j.batch_id = b.id WHERE d.user_id = %s AND d.status = 'revoked')) s"
        " WHERE rn <= %s",
        (user_id, max_age_s, user_id, max_samples),
    ).fetchall()
    return [ScoreSample(r["factor"], float(r["score"]), float(r["llr"]), r["at"]) for r in rows]


def user_trust(
    conn: psycopg.Connection[DictRow],
    *,
    user_id: uuid.UUID,
    threshold: float,
    settings: TrustSettings,
) -> TrustScore:
    """The user's trust now, computed from the scores table (always consistent with it)."""
    row = conn.execute("SELECT now() AS now").fetchone()
    assert row is not None
    samples = recent_samples(
        conn, user_id=user_id, max_age_s=settings.max_age_s, max_samples=settings.max_samples
    )
    return fuse(
        samples, now=row["now"], params=FusionParams.from_settings(settings), threshold=threshold
    )
