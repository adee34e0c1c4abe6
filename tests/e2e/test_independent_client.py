"""docs/protocol.md is enough: a client built from it alone (pyhpke, raw httpx) is accepted and scored."""

from __future__ import annotations

import importlib
import uuid

import httpx
import numpy as np
import pytest

from tests.e2e import flow
from tests.e2e.independent_client import IndependentPhone
from tests.workers.test_opening import worker  # noqa: F401 - fixture


def _token(http: httpx.Client, headers: dict[str, str], user: str) -> str:
    """The tenant's part: a token for the phone, and a window in which its enrol batches count."""
    r = http.post(f"/v1/users/{user}/enrolment-tokens", headers=headers)
    assert r.status_code == 201, r.text
    w = http.post(
        f"/v1/users/{user}/enrolments", json={"factors": ["gait"], "ttl_s": 900}, headers=headers
    )
    assert w.status_code == 201, w.text
    return r.json()["token"]


def test_independent_envelope_is_accepted_and_opens_in_a_worker(api, tenant, worker):  # type: ignore[no-untyped-def]  # noqa: F811
    from core.db import transaction
    from core.jobs import endings
    from workers.opening import open_blob

    # given a phone that knows only the document
    phone = IndependentPhone.enrol(api, _token(api, tenant["headers"], "ada"))
    # when it seals and uploads a frame
    _, body = phone.envelope(b"independent frame", "gait", "verify")
    r = phone.upload(body)
    # then the API accepts it and the worker opens exactly that frame
    assert r.status_code == 202, r.text
    with transaction(worker.pool) as conn:
        job = endings.claim(conn, uuid.UUID(r.json()["job_id"]))
    assert open_blob(job, worker.store.get(job.object_key), worker.keys) == b"independent frame"


@pytest.mark.integration
def test_independent_client_is_scored_by_the_running_stack(stack, settings, db):  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    synthetic = importlib.import_module("pipelines.gait.synthetic")
    _, key = create_tenant(db, name=f"indep-{uuid.uuid4().hex[:6]}")
    tenant_headers = {"Authorization": f"Bearer {key.token}"}
    rng = np.random.default_rng(11)
    person = synthetic.make_person(4242)
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        phone = IndependentPhone.enrol(http, _token(http, tenant_headers, "ada"))
        enrol_ids = [
            phone.upload(phone.envelope(synthetic.capture(person, rng, 8), "gait", "enrol")[1])
            for _ in range(3)
        ]
        assert all(r.status_code == 202 for r in enrol_ids), [r.text for r in enrol_ids]
        ids = [r.json()["job_id"] for r in enrol_ids]
        tenancy = flow.simulate.Tenancy(stack.api_url, key.token)
        enrolled = flow.wait_all(tenancy, ids)
        assert all(j["status"] == "done" for j in enrolled.values()), [
            j["error"] for j in enrolled.values()
        ]
        probe = phone.upload(phone.envelope(synthetic.capture(person, rng, 4), "gait", "verify")[1])
        assert probe.status_code == 202, probe.text
    job = flow.wait_all(tenancy, [probe.json()["job_id"]])[probe.json()["job_id"]]
    assert job["status"] == "done", job["error"]
    assert 0.0 <= job["score"]["score"] <= 1.0
