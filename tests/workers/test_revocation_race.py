"""A revocation racing a worker's enrolment: the sample never outlives the device."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from core.db import make_pool, transaction
from core.errors import PermanentJobError
from core.jobs import endings
from core.jobs import repository as jobs
from tests.api.conftest import enrol_phone, post_envelope
from tests.isolated import api, db, services, settings  # noqa: F401 - no running stack claims these jobs
from workers import enrolment


class _NoGate:
    """A pipeline stand-in for a first enrolment (no template yet, so no gate, and no model)."""

    model_version = "m-test"
    min_enrol_samples = 10_000  # never enough: no template is built


@pytest.fixture()
def pool(settings):  # type: ignore[no-untyped-def]
    with make_pool(settings.database_url, name="test-race") as p:
        yield p


def _claimed(api, tenant, pool, phone) -> jobs.ClaimedJob:  # type: ignore[no-untyped-def]
    job_id = post_envelope(api, phone, phone.envelope(purpose="enrol")[1]).json()["job_id"]
    with transaction(pool) as conn:
        job = endings.claim(conn, uuid.UUID(job_id))
    assert job is not None and job.batch_id is not None and job.enrolment_id is not None
    return job


def _samples(db, phone) -> int:  # type: ignore[no-untyped-def]
    return db.execute(
        "SELECT count(*) AS n FROM enrolment_samples WHERE device_id = %s", (phone.device_id,)
    ).fetchone()["n"]


def test_a_revocation_during_the_enrolment_waits_and_then_removes_the_sample(api, tenant, db, pool):  # type: ignore[no-untyped-def]
    # given a worker in the middle of enrolling a batch of the phone (its transaction open)
    phone = enrol_phone(api, tenant)
    job = _claimed(api, tenant, pool, phone)
    emb = np.zeros((8, 4), dtype=np.float32)
    revoked = threading.Event()
    with transaction(pool) as conn:
        assert enrolment.enrol(conn, _NoGate(), job, emb, held_ttl_s=60, max_samples=50) == "merged"  # type: ignore[arg-type]
        # when the tenant revokes the device meanwhile
        t = threading.Thread(
            target=lambda: (
                api.delete(f"/v1/devices/{phone.device_id}", headers=tenant["headers"]),
                revoked.set(),
            )
        )
        t.start()
        time.sleep(0.5)
        # then the revocation waits for the worker's transaction
        assert not revoked.is_set()
    t.join(10)
    assert revoked.is_set()
    # and, once both committed, the sample is gone
    assert _samples(db, phone) == 0


def test_an_enrolment_after_the_revocation_is_refused(api, tenant, db, pool):  # type: ignore[no-untyped-def]
    # given a job claimed a moment before its device was revoked
    phone = enrol_phone(api, tenant)
    job = _claimed(api, tenant, pool, phone)
    assert (
        api.delete(f"/v1/devices/{phone.device_id}", headers=tenant["headers"]).status_code == 200
    )
    # when the worker gets to enrol it, then it is refused and nothing is written
    with pytest.raises(PermanentJobError) as e, transaction(pool) as conn:
        enrolment.enrol(
            conn, _NoGate(), job, np.zeros((8, 4), dtype=np.float32), held_ttl_s=60, max_samples=50
        )  # type: ignore[arg-type]
    assert e.value.code == "device_revoked"
    assert _samples(db, phone) == 0
