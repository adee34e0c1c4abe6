"""Retention: one sweep removes rows and blobs past the policy and touches nothing younger."""

from __future__ import annotations

import uuid

import pytest
import redis

from core.storage import LocalStore, make_store
from tests.api.conftest import enrol_phone, post_envelope
from tests.isolated import api, db, services, settings  # noqa: F401 - no stack's relay sweeps this database


@pytest.fixture()
def pool(settings):  # type: ignore[no-untyped-def]
    from core.db import make_pool

    with make_pool(settings.database_url, name="test-retention") as p:
        yield p


def _upload(api, db, phone, *, purpose: str, age_days: float, status: str = "done") -> dict:  # type: ignore[no-untyped-def]
    """A batch of the phone, received `age_days` ago, its job in `status`."""
    job_id = post_envelope(api, phone, phone.envelope(purpose=purpose)[1]).json()["job_id"]
    row = db.execute(
        "UPDATE batches b SET received_at = now() - make_interval(secs => %s) FROM jobs j"
        " WHERE j.id = %s AND b.id = j.batch_id RETURNING b.id, b.object_key, j.user_id",
        (age_days * 86_400, uuid.UUID(job_id)),
    ).fetchone()
    db.execute("UPDATE jobs SET status = %s WHERE id = %s", (status, uuid.UUID(job_id)))
    return {"job_id": uuid.UUID(job_id), **row}


def _sample(db, tenant, phone, batch: dict, *, window=None, held_until: str | None = None) -> None:  # type: ignore[no-untyped-def]
    db.execute(
        "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples,"
        " device_id, batch_id, enrolment_id, status, held_until) VALUES (%s, %s, %s, 'keystroke', 'm1', '\\x00', 1,"
        f" %s, %s, %s, %s, {held_until or 'NULL'})",
        (
            batch["job_id"],
            tenant["id"],
            batch["user_id"],
            phone.device_id,
            batch["id"],
            window,
            "held" if held_until else "active",
        ),
    )


def _exists(db, table: str, column: str, value) -> bool:  # type: ignore[no-untyped-def]
    return (
        db.execute(f"SELECT count(*) AS n FROM {table} WHERE {column} = %s", (value,)).fetchone()[
            "n"
        ]
        == 1
    )


def test_one_sweep_removes_what_is_past_the_policy_and_nothing_younger(
    api, tenant, db, settings, pool
):  # type: ignore[no-untyped-def]
    from core import retention

    store = make_store(settings.storage)
    # given a tenant keeping raw verify batches 2 days
    r = api.patch("/v1/tenant", json={"retention_days": 2}, headers=tenant["headers"])
    assert r.status_code == 200 and r.json()["retention_days"] == 2, r.text
    phone = enrol_phone(api, tenant)
    window = api.get("/v1/users/alice/enrolments", headers=tenant["headers"]).json()[0][
        "enrolment_id"
    ]
    # and batches of every kind, older and younger than that
    old_verify = _upload(api, db, phone, purpose="verify", age_days=3)
    young_verify = _upload(api, db, phone, purpose="verify", age_days=1.5)
    old_open = _upload(api, db, phone, purpose="verify", age_days=3, status="queued")
    old_enrol_in_template = _upload(api, db, phone, purpose="enrol", age_days=40)
    old_enrol_unused = _upload(api, db, phone, purpose="enrol", age_days=3, status="failed")
    _sample(db, tenant, phone, old_enrol_in_template, window=window)
    held_expired = _upload(api, db, phone, purpose="enrol", age_days=0)
    held_waiting = _upload(api, db, phone, purpose="enrol", age_days=0)
    _sample(db, tenant, phone, held_expired, held_until="now() - interval '1 second'")
    _sample(db, tenant, phone, held_waiting, held_until="now() + interval '1 day'")
    # and bookkeeping: an old published outbox row, finished and pending webhook messages,
    # an expired token, ended windows (one a sample refers to)
    db.execute(
        "UPDATE outbox SET published_at = now() - interval '2 days' WHERE job_id = %s",
        (young_verify["job_id"],),
    )
    ep = api.post(
        "/v1/webhooks/endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=tenant["headers"]
    ).json()
    for msg, status, age in (
        ("msg_done", "succeeded", 8),
        ("msg_pending", "pending", 8),
        ("msg_young", "dead", 1),
    ):
        db.execute(
            "INSERT INTO webhook_messages (id, tenant_id, event_type, payload, created_at) VALUES"
            " (%s, %s, 'job.completed', '{}', now() - make_interval(days => %s))",
            (f"{msg}-{ep['id']}", tenant["id"], age),
        )
        db.execute(
            "INSERT INTO webhook_deliveries (id, message_id, endpoint_id, status) VALUES (%s, %s, %s, %s)",
            (uuid.uuid4(), f"{msg}-{ep['id']}", ep["id"], status),
        )
    api.post("/v1/users/alice/enrolment-tokens", headers=tenant["headers"])
    db.execute(
        "UPDATE enrolment_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = %s",
        (tenant["id"],),
    )
    api.post("/v1/users/alice/enrolment-tokens", headers=tenant["headers"])  # a valid one
    ended = api.post(
        "/v1/users/alice/enrolments", json={"factors": ["gait"]}, headers=tenant["headers"]
    ).json()
    recent = api.post(
        "/v1/users/alice/enrolments", json={"factors": ["gait"]}, headers=tenant["headers"]
    ).json()
    for w, ago in (
        (ended["enrolment_id"], "2 days"),
        (window, "2 days"),
        (recent["enrolment_id"], "1 hour"),
    ):
        db.execute(
            f"UPDATE enrolment_windows SET expires_at = now() - interval '{ago}' WHERE id = %s",
            (w,),
        )

    # when the sweeper runs once
    pruned = retention.sweep(pool, store, settings.retention.model_copy(update={"batch": 10_000}))

    # then what is past the policy is gone, rows and blobs
    assert pruned["batches"] >= 2
    for gone in (old_verify, old_enrol_unused):
        assert not _exists(db, "batches", "id", gone["id"]) and not _exists(
            db, "jobs", "id", gone["job_id"]
        )
        assert store.list(gone["object_key"]) == []
    # and nothing younger, unfinished, or still needed by a template is touched
    for kept in (young_verify, old_open, old_enrol_in_template, held_waiting):
        assert _exists(db, "batches", "id", kept["id"]) and store.get(kept["object_key"])
    assert not _exists(db, "enrolment_samples", "job_id", held_expired["job_id"])
    assert _exists(db, "enrolment_samples", "job_id", held_waiting["job_id"])
    assert not _exists(db, "outbox", "job_id", young_verify["job_id"])
    assert _exists(db, "outbox", "job_id", old_open["job_id"])
    msgs = {
        r["id"].split("-")[0]
        for r in db.execute(
            "SELECT id FROM webhook_messages WHERE tenant_id = %s", (tenant["id"],)
        ).fetchall()
    }
    assert msgs == {"msg_pending", "msg_young"}
    tokens = db.execute(
        "SELECT count(*) AS n FROM enrolment_tokens WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()
    assert tokens["n"] == 1
    windows = {
        r["id"]
        for r in db.execute(
            "SELECT id FROM enrolment_windows WHERE tenant_id = %s", (tenant["id"],)
        ).fetchall()
    }
    assert uuid.UUID(ended["enrolment_id"]) not in windows
    assert uuid.UUID(window) in windows  # a sample still refers to it
    assert uuid.UUID(recent["enrolment_id"]) in windows  # ended within the day: still listed


@pytest.mark.parametrize("days", [0, 3651, "a week"])
def test_a_bad_retention_policy_is_refused_and_changes_nothing(api, tenant, days):  # type: ignore[no-untyped-def]
    r = api.patch("/v1/tenant", json={"retention_days": days}, headers=tenant["headers"])
    assert r.status_code == 422 and r.json()["error"]["code"] in (
        "invalid_retention",
        "invalid_request",
    ), r.text
    now = api.get("/v1/tenant", headers=tenant["headers"]).json()
    assert now["retention_days_set"] is False and now["retention_days"] == 30


def test_erasure_leaves_no_redis_key_of_the_user(api, tenant, settings):  # type: ignore[no-untyped-def]
    # given a phone that uploaded (a nonce and rate counters in Redis)
    phone = enrol_phone(api, tenant)
    assert post_envelope(api, phone, phone.envelope(purpose="verify")[1]).status_code == 202
    client = redis.Redis.from_url(settings.redis_url)

    def mine() -> list[bytes]:
        return [
            k
            for k in client.scan_iter(match="tacit:*", count=1000)
            if phone.device_id.encode() in k
        ]

    assert mine()
    # when the user is erased, then no key of theirs is left
    assert api.delete("/v1/users/alice", headers=tenant["headers"]).status_code == 204
    assert mine() == []


def test_deleting_a_prefix_leaves_no_empty_folders(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path)
    store.put("raw/t/d/2026/12/02/a", b"x")
    store.put("raw/t/other/2026/12/02/b", b"y")
    assert store.delete_prefix("raw/t/d/") == 1
    assert not (tmp_path / "raw" / "t" / "d").exists()
    assert store.get("raw/t/other/2026/12/02/b") == b"y"
