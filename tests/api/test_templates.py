"""Reading a user's templates and accepting held samples: scoped to the tenant, bad input refused."""

from __future__ import annotations

import uuid

from tests.api.conftest import enrol_phone, post_envelope


def _enrolled(api, tenant, db, *, held_until: str):  # type: ignore[no-untyped-def]
    """alice with a keystroke template from one phone, and a held sample of a second phone."""
    mine, theirs = enrol_phone(api, tenant), enrol_phone(api, tenant)
    rows = []
    for phone in (mine, theirs):
        job_id = post_envelope(api, phone, phone.envelope()[1]).json()["job_id"]
        rows.append(
            db.execute(
                "SELECT id, user_id, batch_id FROM jobs WHERE id = %s", (uuid.UUID(job_id),)
            ).fetchone()
        )
    for phone, row, status in ((mine, rows[0], "active"), (theirs, rows[1], "held")):
        db.execute(
            "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples,"
            " device_id, batch_id, status, held_until)"
            f" VALUES (%s, %s, %s, 'keystroke', 'm1', '\\x00', 8, %s, %s, %s, {held_until})",
            (row["id"], tenant["id"], row["user_id"], phone.device_id, row["batch_id"], status),
        )
    db.execute(
        "INSERT INTO templates (user_id, factor, tenant_id, model_version, data, samples, version)"
        " VALUES (%s, 'keystroke', %s, 'm1', '\\x00', 8, 3)",
        (rows[0]["user_id"], tenant["id"]),
    )
    return mine, theirs


def test_templates_show_version_devices_and_held_samples(api, tenant, db):  # type: ignore[no-untyped-def]
    mine, _ = _enrolled(api, tenant, db, held_until="now() + interval '1 day'")
    r = api.get("/v1/users/alice/templates", headers=tenant["headers"])
    assert r.status_code == 200, r.text
    (t,) = r.json()
    assert (t["factor"], t["model_version"], t["samples"], t["version"], t["held"]) == (
        "keystroke",
        "m1",
        8,
        3,
        1,
    )
    assert t["devices"] == [mine.device_id] and t["updated_at"]


def test_accepting_held_samples_owes_a_rebuild(api, tenant, db):  # type: ignore[no-untyped-def]
    _, theirs = _enrolled(api, tenant, db, held_until="now() + interval '1 day'")
    r = api.post("/v1/users/alice/templates/keystroke/accept-held", headers=tenant["headers"])
    assert r.status_code == 200 and r.json() == {"accepted": 1}, r.text
    row = db.execute(
        "SELECT status FROM enrolment_samples WHERE device_id = %s", (theirs.device_id,)
    ).fetchone()
    assert row["status"] == "active"
    owed = db.execute(
        "SELECT reason FROM template_rebuilds WHERE tenant_id = %s", (tenant["id"],)
    ).fetchall()
    assert [r["reason"] for r in owed] == ["held_accepted"]
    # and accepting again finds nothing to accept
    again = api.post("/v1/users/alice/templates/keystroke/accept-held", headers=tenant["headers"])
    assert again.json() == {"accepted": 0}


def test_expired_held_samples_cannot_be_accepted(api, tenant, db):  # type: ignore[no-untyped-def]
    _enrolled(api, tenant, db, held_until="now() - interval '1 second'")
    assert api.get("/v1/users/alice/templates", headers=tenant["headers"]).json()[0]["held"] == 0
    r = api.post("/v1/users/alice/templates/keystroke/accept-held", headers=tenant["headers"])
    assert r.json() == {"accepted": 0}
    assert (
        db.execute(
            "SELECT count(*) AS n FROM template_rebuilds WHERE tenant_id = %s", (tenant["id"],)
        ).fetchone()["n"]
        == 0
    )


def test_bad_factor_and_other_tenants_user_are_refused(api, tenant, db):  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    _enrolled(api, tenant, db, held_until="now() + interval '1 day'")
    r = api.post("/v1/users/alice/templates/iris/accept-held", headers=tenant["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_factor")
    _, key = create_tenant(db, name=f"other-{uuid.uuid4().hex[:6]}")
    other = {"Authorization": f"Bearer {key.token}"}
    for method, path in (
        ("get", "/v1/users/alice/templates"),
        ("post", "/v1/users/alice/templates/keystroke/accept-held"),
    ):
        r = getattr(api, method)(path, headers=other)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "user_not_found"), r.text
    held = db.execute(
        "SELECT count(*) AS n FROM enrolment_samples WHERE tenant_id = %s AND status = 'held'",
        (tenant["id"],),
    ).fetchone()["n"]
    assert held == 1


def test_a_template_reads_only_the_newest_samples(api, tenant, db) -> None:  # type: ignore[no-untyped-def]
    from core.enrolment.templates import active_samples

    # given alice with 12 enrolment samples of keystroke
    phone = enrol_phone(api, tenant)
    for i in range(12):
        job_id = post_envelope(api, phone, phone.envelope()[1]).json()["job_id"]
        row = db.execute(
            "SELECT id, user_id, batch_id FROM jobs WHERE id = %s", (uuid.UUID(job_id),)
        ).fetchone()
        db.execute(
            "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples,"
            " device_id, batch_id, created_at) VALUES (%s, %s, %s, 'keystroke', 'm1', %s, 1, %s, %s,"
            " now() - make_interval(secs => %s))",
            (
                row["id"],
                tenant["id"],
                row["user_id"],
                bytes([i]),
                phone.device_id,
                row["batch_id"],
                100 - i,
            ),
        )
    # when a rebuild reads them with a cap of 5, then it gets the newest 5, oldest first
    got = active_samples(
        db, user_id=row["user_id"], factor="keystroke", model_version="m1", limit=5
    )
    assert [b for b, _ in got] == [bytes([i]) for i in range(7, 12)]
