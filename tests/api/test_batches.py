"""Uploading batches: blob, rows and outbox together; retries return the same job."""

from __future__ import annotations

import uuid

from core.storage import make_store
from tests.api.conftest import post_envelope


def test_upload_writes_blob_rows_and_outbox(api, phone, db, settings):  # type: ignore[no-untyped-def]
    # given an enrolled device and a sealed batch
    batch_id, envelope = phone.envelope()
    # when it uploads the signed envelope
    r = post_envelope(api, phone, envelope)
    # then 202 with a job, a batch row, an outbox row and the envelope under raw/<tenant>/<device>/...
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status_url"] == f"/v1/jobs/{job_id}"
    row = db.execute(
        "SELECT b.object_key, b.client_batch_id, b.key_id, b.captured_to, j.status, o.published_at"
        " FROM jobs j JOIN batches b ON b.id = j.batch_id JOIN outbox o ON o.job_id = j.id"
        " WHERE j.id = %s",
        (job_id,),
    ).fetchone()
    assert row["object_key"].startswith(f"raw/{phone.tenant['id']}/{phone.device_id}/")
    assert row["client_batch_id"] == batch_id
    assert row["key_id"] == phone.device.server_key.key_id
    assert row["captured_to"] is not None
    assert row["status"] in ("queued", "running", "done", "failed")
    assert make_store(settings.storage).get(row["object_key"]) == envelope


def test_retry_with_same_batch_id_returns_same_job(api, phone, db, settings):  # type: ignore[no-untyped-def]
    # given one sealed batch
    batch_id, envelope = phone.envelope()
    # when it is sent twice, each time freshly signed (as the SDK retries)
    first = phone.device.send(batch_id, envelope)
    second = post_envelope(api, phone, envelope)
    # then the same job, marked duplicate, and one batch row
    assert second.status_code == 202
    assert first.job_id == second.json()["job_id"]
    assert second.json()["duplicate"] is True
    n = db.execute(
        "SELECT count(*) AS n FROM batches WHERE client_batch_id = %s", (batch_id,)
    ).fetchone()["n"]
    assert n == 1
    # and the retry's own copy of the blob is gone: one object, the one the row names
    key = db.execute(
        "SELECT object_key FROM batches WHERE client_batch_id = %s", (batch_id,)
    ).fetchone()["object_key"]
    assert make_store(settings.storage).list(f"raw/{phone.tenant['id']}/{phone.device_id}/") == [
        key
    ]


def test_other_tenant_cannot_read_job(api, phone, tenant, db):  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    job_id = post_envelope(api, phone, phone.envelope()[1]).json()["job_id"]
    _, other_key = create_tenant(db, name="other")
    r = api.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {other_key.token}"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "job_not_found"
    mine = api.get(f"/v1/jobs/{job_id}", headers=tenant["headers"])
    assert mine.status_code == 200 and mine.json()["id"] == job_id


def test_uuid_v7_batch_ids_are_accepted(api, phone):  # type: ignore[no-untyped-def]
    import os
    import time

    ms = int(time.time() * 1000).to_bytes(6, "big")
    raw = bytearray(ms + os.urandom(10))
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    _, envelope = phone.envelope(batch_id=uuid.UUID(bytes=bytes(raw)))
    assert post_envelope(api, phone, envelope).status_code == 202


def _batches_of(db, phone) -> int:  # type: ignore[no-untyped-def]
    return db.execute(
        "SELECT count(*) AS n FROM batches WHERE device_id = %s", (phone.device_id,)
    ).fetchone()["n"]


def test_a_device_revoked_after_uploading_is_refused_at_once(api, phone, tenant, db):  # type: ignore[no-untyped-def]
    # given a device whose key the API already holds from an earlier upload
    assert post_envelope(api, phone, phone.envelope()[1]).status_code == 202
    # when the tenant revokes it and it uploads again
    assert (
        api.delete(f"/v1/devices/{phone.device_id}", headers=tenant["headers"]).status_code == 200
    )
    r = post_envelope(api, phone, phone.envelope()[1])
    # then 403 device_revoked, and nothing more is stored
    assert r.status_code == 403 and r.json()["error"]["code"] == "device_revoked"
    assert _batches_of(db, phone) == 1


def test_a_device_erased_after_uploading_is_unknown(api, phone, tenant, db):  # type: ignore[no-untyped-def]
    # given a device whose key the API already holds
    assert post_envelope(api, phone, phone.envelope()[1]).status_code == 202
    # when its user is erased (device rows with it) and it uploads again
    assert api.delete("/v1/users/alice", headers=tenant["headers"]).status_code in (
        200,
        204,
    )  # the phone's user
    r = post_envelope(api, phone, phone.envelope()[1])
    # then 404 device_not_found, and no row comes back
    assert r.status_code == 404 and r.json()["error"]["code"] == "device_not_found"
    assert _batches_of(db, phone) == 0


def test_a_retry_with_other_bytes_cannot_replace_the_accepted_blob(api, phone, db, settings):  # type: ignore[no-untyped-def]
    # given an accepted batch
    batch_id, envelope = phone.envelope()
    job_id = post_envelope(api, phone, envelope).json()["job_id"]
    # when the same batch id comes again with other contents
    _, other = phone.envelope(batch_id=batch_id, frame=b"something else entirely")
    r = post_envelope(api, phone, other)
    # then the first job is returned and the stored blob is still the first upload's
    assert r.status_code == 202 and r.json() == {**r.json(), "job_id": job_id, "duplicate": True}
    key = db.execute(
        "SELECT object_key FROM batches WHERE client_batch_id = %s", (batch_id,)
    ).fetchone()["object_key"]
    store = make_store(settings.storage)
    assert store.get(key) == envelope
    assert store.list(f"raw/{phone.tenant['id']}/{phone.device_id}/") == [key]
