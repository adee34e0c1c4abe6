"""Erasing a user: nothing of them left in Postgres or the object store; everyone else untouched."""

from __future__ import annotations

import uuid

import pytest

from core.storage import make_store
from tests.webhooks import rows


def _tables_with_user_id(db) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        r["table_name"]
        for r in db.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'user_id' ORDER BY table_name"
        ).fetchall()
    ]


def _remaining(db, user_id) -> dict[str, int]:  # type: ignore[no-untyped-def]
    counts = {
        t: db.execute(f"SELECT count(*) AS n FROM {t} WHERE user_id = %s", (user_id,)).fetchone()[
            "n"
        ]
        for t in _tables_with_user_id(db)
    }
    counts["users"] = db.execute(
        "SELECT count(*) AS n FROM users WHERE id = %s", (user_id,)
    ).fetchone()["n"]
    return {t: n for t, n in counts.items() if n}


@pytest.fixture()
def store(settings):  # type: ignore[no-untyped-def]
    return make_store(settings.storage)


def _history(db, store, tenant_id, user: str) -> tuple[uuid.UUID, list[uuid.UUID], list[str]]:  # type: ignore[no-untyped-def]
    """Two devices, enrolment and verify jobs with blobs, scores, samples, a template, a token, an event."""
    user_id, d1 = rows.device(db, tenant_id, user)
    _, d2 = rows.device(db, tenant_id, user)
    made = [
        rows.job(
            db,
            tenant_id,
            user,
            device_id=d,
            purpose=p,
            llr=1.0 if p == "verify" else None,
            store=store,
        )
        for d in (d1, d2)
        for p in ("enrol", "verify")
    ]
    for r in made:
        db.execute("INSERT INTO outbox (job_id, queue) VALUES (%s, 'score.keystroke')", (r.job_id,))
    db.execute(
        "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples)"
        " VALUES (%s, %s, %s, 'keystroke', 'm1', 'x', 1)",
        (made[0].job_id, tenant_id, user_id),
    )
    db.execute(
        "INSERT INTO templates (user_id, factor, tenant_id, model_version, data, samples)"
        " VALUES (%s, 'keystroke', %s, 'm1', 'x', 1)",
        (user_id, tenant_id),
    )
    db.execute(
        "INSERT INTO enrolment_tokens (token_hash, tenant_id, user_id, expires_at)"
        " VALUES (%s, %s, %s, now() + interval '1 hour')",
        (uuid.uuid4().bytes, tenant_id, user_id),
    )
    db.execute(
        "INSERT INTO webhook_messages (id, tenant_id, user_id, event_type, payload)"
        " VALUES (%s, %s, %s, 'job.completed', '{}')",
        (f"msg_{uuid.uuid4().hex}", tenant_id, user_id),
    )
    db.execute(
        "INSERT INTO user_trust_state (user_id, tenant_id, probability, decision)"
        " VALUES (%s, %s, 0.9, 'genuine')",
        (user_id, tenant_id),
    )
    # a blob whose batch row never committed (an upload that failed half-way)
    stray = f"raw/{tenant_id}/{d2}/2025/01/02/{uuid.uuid4()}"
    store.put(stray, b"orphan")
    return user_id, [d1, d2], [r.object_key for r in made] + [stray]


def test_erasure_leaves_nothing_of_the_user_and_touches_no_one_else(api, tenant, db, store) -> None:  # type: ignore[no-untyped-def]
    # given alice with a full history, and bob beside her
    alice, alice_devices, alice_keys = _history(db, store, tenant["id"], "alice")
    bob, bob_devices, bob_keys = _history(db, store, tenant["id"], "bob")
    assert set(_remaining(db, alice)) >= {
        "devices",
        "batches",
        "jobs",
        "scores",
        "templates",
        "enrolment_samples",
        "enrolment_tokens",
        "webhook_messages",
        "user_trust_state",
        "users",
    }
    bob_before = _remaining(db, bob)
    # when the tenant erases alice
    r = api.delete("/v1/users/alice", headers=tenant["headers"])
    # then 204, no row about her in any table, no object under her devices
    assert r.status_code == 204, r.text
    assert _remaining(db, alice) == {}
    assert (
        db.execute(
            "SELECT count(*) AS n FROM outbox o LEFT JOIN jobs j ON j.id = o.job_id WHERE j.id IS NULL"
        ).fetchone()["n"]
        == 0
    )
    for d in alice_devices:
        assert store.list(f"raw/{tenant['id']}/{d}/") == []
    for key in alice_keys:
        assert store.list(key) == []
    # and bob is untouched
    assert _remaining(db, bob) == bob_before
    assert all(store.get(k) for k in bob_keys)
    # and a second erasure finds no one
    assert api.delete("/v1/users/alice", headers=tenant["headers"]).status_code == 404


def test_another_tenants_user_is_404_and_kept(api, tenant, db, store) -> None:  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    carol, _, keys = _history(db, store, tenant["id"], "carol")
    _, other = create_tenant(db, name="other")
    r = api.delete("/v1/users/carol", headers={"Authorization": f"Bearer {other.token}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    assert "users" in _remaining(db, carol) and all(store.get(k) for k in keys)
    assert api.delete("/v1/users/nobody", headers=tenant["headers"]).status_code == 404
