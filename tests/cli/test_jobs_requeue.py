"""`tacit jobs requeue --dead`: dead jobs go back to queued with an outbox row due now."""

from __future__ import annotations

import uuid

from cli.main import main
from core.batches.service import NewBatch, utcnow
from core.devices.service import create_device
from tests.batches import record_batch_sync


def _dead_job(db, tenant, factor: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    device = create_device(db, tenant_id=tenant["id"], user_external_id=f"u-{uuid.uuid4().hex[:6]}")
    acc = record_batch_sync(
        db,
        device=device,
        batch=NewBatch(uuid.uuid4(), factor, "verify", b"x"),
        object_key="raw/x",
        queue=f"score.{factor}",
        received=utcnow(),
    )
    db.execute(
        "UPDATE jobs SET status = 'dead', attempts = 5, error_code = 'attempts_exhausted' WHERE id = %s",
        (acc.job_id,),
    )
    return acc.job_id


def test_requeue_dead_jobs_of_one_factor(db, tenant, capsys):  # type: ignore[no-untyped-def]
    # given a dead gait job and a dead face job
    gait, face = _dead_job(db, tenant, "gait"), _dead_job(db, tenant, "face")
    # when the operator requeues dead gait jobs
    assert main(["jobs", "requeue", "--dead", "--factor", "gait"]) == 0
    # then the gait job is queued with fresh attempts and an outbox row due now; the face job stays dead
    g = db.execute(
        "SELECT status, attempts, error_code FROM jobs WHERE id = %s", (gait,)
    ).fetchone()
    f = db.execute("SELECT status FROM jobs WHERE id = %s", (face,)).fetchone()
    assert (g["status"], g["attempts"], g["error_code"]) == ("queued", 0, None)
    assert f["status"] == "dead"
    due = db.execute(
        "SELECT count(*) AS n FROM outbox WHERE job_id = %s AND published_at IS NULL"
        " AND not_before <= now()",
        (gait,),
    ).fetchone()["n"]
    assert due == 1
    assert "requeued" in capsys.readouterr().out
