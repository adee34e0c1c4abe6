"""The worker side of the protocol: stored envelopes open with the key file, or fail their job at once.

Uploads go through the real API (Postgres, Redis, S3); the score task runs in this
process over the same services, with the real key file, up to the point where the
batch is opened. Batches that cannot be opened never reach a model.
"""

from __future__ import annotations

import os
import uuid

import pytest

from core.db import make_pool, transaction
from core.jobs import endings
from core.protocol import hpke
from core.protocol.envelope import parse_envelope
from core.protocol.errors import ProtocolError
from tests.api.conftest import enrol_phone, post_envelope
from tests.workers.in_process import pool_process
from workers import opening
from workers.errors import classify


@pytest.fixture()
def api(settings):  # type: ignore[no-untyped-def]
    """The API, publishing keystroke jobs to a queue of this test's own: the live workers of the
    session stack (if it runs) must not take the jobs this test delivers by hand."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    queues = settings.queues.model_copy(
        update={"keystroke": f"score.keystroke.test-{uuid.uuid4().hex[:8]}"}
    )
    with TestClient(
        create_app(settings.model_copy(update={"queues": queues})), raise_server_exceptions=False
    ) as client:
        yield client


@pytest.fixture()
def worker(settings, keyring_file):  # type: ignore[no-untyped-def]
    """This process as a worker: it knows the key file (the in-process API does not look).

    No pipeline: every case here ends before a model would run."""
    with pool_process(settings, keyring_file, "keystroke") as rt:
        yield rt


def _run_task(job_id: str) -> dict:
    """Deliver the job to the score task as a worker would (called directly, not eagerly)."""
    from workers.tasks.score import score

    score(job_id)
    pool = make_pool(os.environ["DATABASE_URL"], name="test-read")
    pool.open()
    try:
        with transaction(pool) as conn:
            return conn.execute(
                "SELECT j.status, j.error_code, j.attempts, b.object_key FROM jobs j"
                " JOIN batches b ON b.id = j.batch_id WHERE j.id = %s",
                (job_id,),
            ).fetchone()
    finally:
        pool.close()


def _flip_last_bit(envelope: bytes) -> bytes:
    return envelope[:-1] + bytes([envelope[-1] ^ 1])


def _batch_id_changed(envelope: bytes) -> bytes:
    return envelope[:7] + uuid.uuid4().bytes + envelope[23:]


def test_a_sealed_batch_opens_to_its_plaintext(api, tenant, worker, settings):  # type: ignore[no-untyped-def]
    phone = enrol_phone(api, tenant)
    _, env = phone.envelope(frame=b"the plaintext frame")
    job_id = post_envelope(api, phone, env).json()["job_id"]
    with transaction(worker.pool) as conn:
        job = endings.claim(conn, uuid.UUID(job_id))
    assert job is not None
    assert (
        opening.open_blob(job, worker.store.get(job.object_key), worker.keys)
        == b"the plaintext frame"
    )


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        (_flip_last_bit, "decrypt_failed"),
        (_batch_id_changed, "decrypt_failed"),
    ],
)
def test_tampered_ciphertext_is_accepted_then_the_job_fails_at_once(
    api, tenant, worker, tamper, code
):  # type: ignore[no-untyped-def]
    # given an envelope changed after encryption (the API cannot tell: it never decrypts)
    phone = enrol_phone(api, tenant)
    body = tamper(phone.envelope()[1])
    r = post_envelope(api, phone, body)
    assert r.status_code == 202, r.text
    # when a worker takes the job
    row = _run_task(r.json()["job_id"])
    # then it fails on the first attempt with the reason, and the blob stays for audit
    assert (row["status"], row["error_code"], row["attempts"]) == ("failed", code, 1)
    assert worker.store.get(row["object_key"]) == body


def test_ciphertext_moved_to_another_device_fails(api, tenant, worker):  # type: ignore[no-untyped-def]
    # given device B re-labelling device A's ciphertext as its own and signing it
    a, b = enrol_phone(api, tenant, "alice"), enrol_phone(api, tenant, "bob")
    env_a = a.envelope()[1]
    relabelled = env_a[:40] + b.device_id.encode() + env_a[40 + len(a.device_id) :]
    r = post_envelope(api, b, relabelled)
    assert r.status_code == 202, r.text
    # then the job fails: the ciphertext is bound to device A
    row = _run_task(r.json()["job_id"])
    assert (row["status"], row["error_code"]) == ("failed", "decrypt_failed")


def test_ciphertext_moved_to_another_tenant_does_not_open(worker, tenant, api):  # type: ignore[no-untyped-def]
    phone = enrol_phone(api, tenant)
    env = parse_envelope(phone.envelope(frame=b"x")[1])
    sk = worker.keys.keyring().private_key(env.key_id)
    assert hpke.open_envelope(sk, phone.device.tenant_id, env) == b"x"
    with pytest.raises(ProtocolError) as e:
        hpke.open_envelope(sk, str(uuid.uuid4()), env)
    assert e.value.code == "decrypt_failed" and classify(e.value).outcome == "fail"


def test_key_published_but_missing_from_the_file_fails_with_unknown_key(api, tenant, worker, db):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from core.keys.service import publish
    from core.protocol.keyring import KeyRecord, generate_key
    from sdk.client import DeviceClient, ServerKey

    # given a public key in server_keys that no worker holds (an operator mistake)
    key_id, _, pub = generate_key()
    with db.transaction():
        publish(db, [KeyRecord(key_id, "active", datetime.now(UTC), pub, None)])
    phone = enrol_phone(api, tenant)
    rogue = DeviceClient(
        str(api.base_url),
        phone.device_id,
        phone.key,
        [ServerKey(key_id, pub, "current")],
        phone.device.tenant_id,
        http=api,
    )
    bid, env = rogue.build_envelope(
        b"x", factor="keystroke", purpose="enrol", capture_start_ms=1, capture_end_ms=2
    )
    r = post_envelope(api, phone, env)
    assert r.status_code == 202, r.text
    row = _run_task(r.json()["job_id"])
    assert (row["status"], row["error_code"]) == ("failed", "unknown_key")


def test_rotation_keeps_in_flight_batches_and_retirement_refuses_them(
    api, tenant, worker, keyring_file, settings
):  # type: ignore[no-untyped-def]
    from cli.keys import retire, rotate

    # given a key K1 made current, and a batch sealed to it before the next rotation
    k1 = rotate(keyring_file, settings.database_url)
    phone = enrol_phone(api, tenant)
    assert phone.device.server_key.key_id == k1
    _, sealed_to_k1 = phone.envelope(frame=b"in flight")
    # when the keys rotate (K2 current, K1 active) and the batch arrives afterwards
    k2 = rotate(keyring_file, settings.database_url)
    keys = {k["key_id"]: k["status"] for k in api.get("/v1/keys").json()["keys"]}
    assert (keys[k1], keys[k2]) == ("active", "current")
    r = post_envelope(api, phone, sealed_to_k1)
    # then it is accepted and the running worker (which loaded the file before) still opens it
    assert r.status_code == 202, r.text
    with transaction(worker.pool) as conn:
        job = endings.claim(conn, uuid.UUID(r.json()["job_id"]))
    assert opening.open_blob(job, worker.store.get(job.object_key), worker.keys) == b"in flight"
    # and a new phone seals to K2, which the worker learns from the file without a restart
    fresh = enrol_phone(api, tenant, "bob")
    _, sealed_to_k2 = fresh.envelope(frame=b"new key")
    r2 = post_envelope(api, fresh, sealed_to_k2)
    with transaction(worker.pool) as conn:
        job2 = endings.claim(conn, uuid.UUID(r2.json()["job_id"]))
    assert opening.open_blob(job2, worker.store.get(job2.object_key), worker.keys) == b"new key"
    # when K1 is retired, the API refuses batches sealed to it and the worker can no longer open one
    retire(keyring_file, k1, settings.database_url)
    late = post_envelope(api, phone, phone.envelope()[1])
    assert late.status_code == 422 and late.json()["error"]["code"] == "retired_key"
    with pytest.raises(ProtocolError) as e:
        opening.open_blob(job, worker.store.get(job.object_key), worker.keys)
    assert e.value.code == "retired_key"
    # and the current key cannot be retired
    with pytest.raises(ProtocolError) as cur:
        retire(keyring_file, k2, settings.database_url)
    assert cur.value.code == "keyring_retire_current"
    assert oct(keyring_file.stat().st_mode & 0o777) == "0o600"
