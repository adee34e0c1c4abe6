"""A template is built from its samples in the order they were captured, not committed."""

from __future__ import annotations

import pytest

from tests.api.conftest import enrol_phone, post_envelope

pytestmark = pytest.mark.integration


def test_samples_come_in_capture_order_whatever_order_their_jobs_committed(api, tenant, db):  # type: ignore[no-untyped-def]
    from core.enrolment.templates import active_samples

    # given three enrol batches of one phone whose jobs committed in the order 2, 0, 1
    phone = enrol_phone(api, tenant)
    for _ in range(3):
        assert post_envelope(api, phone, phone.envelope(purpose="enrol")[1]).status_code == 202
    jobs = db.execute(
        "SELECT j.id, j.user_id, j.batch_id FROM jobs j JOIN batches b ON b.id = j.batch_id"
        " WHERE b.device_id = %s ORDER BY j.created_at, j.id",
        (phone.device_id,),
    ).fetchall()
    for i, job in enumerate(jobs):  # captured a minute apart, in this order
        db.execute(
            "UPDATE batches SET captured_to = now() - make_interval(mins => %s) WHERE id = %s",
            (10 - i, job["batch_id"]),
        )
    for i in (2, 0, 1):
        job = jobs[i]
        db.execute(
            "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings,"
            " samples, device_id, batch_id, status) VALUES (%s, %s, %s, 'keystroke', 'm1', %s, 1, %s, %s, 'active')",
            (job["id"], tenant["id"], job["user_id"], bytes([i]), phone.device_id, job["batch_id"]),
        )
    # when the template's samples are read
    samples = active_samples(
        db, user_id=jobs[0]["user_id"], factor="keystroke", model_version="m1", limit=50
    )
    # then they come in capture order
    assert [e for e, _ in samples] == [b"\x00", b"\x01", b"\x02"]
