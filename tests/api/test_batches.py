"""Uploading batches: blob, rows and outbox together; retries return the same job."""

from __future__ import annotations

import uuid

from core.storage import make_store


def _device(api, tenant, user="alice") -> str:  # type: ignore[no-untyped-def]
    r = api.post(f"/v1/users/{user}/devices", json={}, headers=tenant["headers"])
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload(api, tenant, device, batch_id=None, factor="keystroke", purpose="enrol", body=b"payload"):  # type: ignore[no-untyped-def]
    headers = dict(tenant["headers"], **{
        "Tacit-Device": device, "Tacit-Batch-Id": str(batch_id or uuid.uuid4()),
        "Tacit-Factor": factor, "Tacit-Purpose": purpose})
    return api.post("/v1/batches", content=body, headers=headers)


def test_upload_writes_blob_rows_and_outbox(api, tenant, db, settings):  # type: ignore[no-untyped-def]
    # given a device
    device = _device(api, tenant)
    # when it uploads a batch
    r = _upload(api, tenant, device, body=b"ciphertext-bytes")
    # then 202 with a job, a batch row, an outbox row and the blob under raw/<tenant>/<device>/...
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status_url"] == f"/v1/jobs/{job_id}"
    row = db.execute(
        "SELECT b.object_key, j.status, o.published_at FROM jobs j JOIN batches b ON b.id = j.batch_id"
        " JOIN outbox o ON o.job_id = j.id WHERE j.id = %s", (job_id,)).fetchone()
    assert row["object_key"].startswith(f"raw/{tenant['id']}/{device}/")
    assert row["status"] in ("queued", "running", "done", "failed")
    assert make_store(settings.storage).get(row["object_key"]) == b"ciphertext-bytes"


def test_retry_with_same_batch_id_returns_same_job(api, tenant, db):  # type: ignore[no-untyped-def]
    device = _device(api, tenant)
    batch_id = uuid.uuid4()
    first = _upload(api, tenant, device, batch_id)
    second = _upload(api, tenant, device, batch_id)
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert second.json()["duplicate"] is True
    n = db.execute("SELECT count(*) AS n FROM batches WHERE client_batch_id = %s", (batch_id,)).fetchone()["n"]
    assert n == 1


def test_other_tenant_cannot_read_job(api, tenant, db):  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    device = _device(api, tenant)
    job_id = _upload(api, tenant, device).json()["job_id"]
    _, other_key = create_tenant(db, name="other")
    r = api.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {other_key.token}"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "job_not_found"
    mine = api.get(f"/v1/jobs/{job_id}", headers=tenant["headers"])
    assert mine.status_code == 200 and mine.json()["id"] == job_id
