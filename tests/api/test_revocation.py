"""Revocation holds at once, in every API process, and reaches samples, windows and trust."""

from __future__ import annotations

import uuid

import pytest

from core.storage import make_store
from tests.api.conftest import enrol_phone, post_envelope


@pytest.fixture()
def other_api(settings):  # type: ignore[no-untyped-def]
    """A second API process of the same deployment (its own cache of device keys)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _rows_and_blobs(db, settings, phone) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    n = db.execute(
        "SELECT count(*) AS n FROM batches WHERE device_id = %s", (phone.device_id,)
    ).fetchone()["n"]
    return n, len(make_store(settings.storage).list(f"raw/{phone.tenant['id']}/{phone.device_id}/"))


@pytest.mark.parametrize("purpose", ["verify", "enrol"])
def test_an_api_process_that_cached_the_key_refuses_at_once(
    api, other_api, tenant, db, settings, purpose
):  # type: ignore[no-untyped-def]
    # given a phone whose key the second API process has cached by taking an upload
    phone = enrol_phone(api, tenant)
    assert post_envelope(other_api, phone, phone.envelope(purpose=purpose)[1]).status_code == 202
    before = _rows_and_blobs(db, settings, phone)
    # when the tenant revokes it through the first process
    assert (
        api.delete(f"/v1/devices/{phone.device_id}", headers=tenant["headers"]).status_code == 200
    )
    # then the second process refuses its next upload with 403 device_revoked, and stores nothing
    r = post_envelope(other_api, phone, phone.envelope(purpose=purpose)[1])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "device_revoked"), r.text
    assert _rows_and_blobs(db, settings, phone) == before


def _sample(db, phone, factor: str, status: str = "active") -> None:  # type: ignore[no-untyped-def]
    """An enrolment sample of one of the phone's jobs, as a worker writes it."""
    _, body = phone.envelope(purpose="enrol", factor=factor)
    r = db.execute(
        "SELECT j.id, j.user_id, j.batch_id FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE b.device_id = %s"
        " AND j.factor = %s AND NOT EXISTS (SELECT 1 FROM enrolment_samples s WHERE s.job_id = j.id) LIMIT 1",
        (phone.device_id, factor),
    ).fetchone()
    db.execute(
        "INSERT INTO enrolment_samples (job_id, tenant_id, user_id, factor, model_version, embeddings, samples,"
        " device_id, batch_id, status, held_until) VALUES (%s, %s, %s, %s, 'm1', '\\x00', 1, %s, %s, %s, now() + interval '1 day')",
        (r["id"], phone.tenant["id"], r["user_id"], factor, phone.device_id, r["batch_id"], status),
    )


def test_revoking_removes_its_samples_owes_rebuilds_and_closes_its_windows(api, tenant, db):  # type: ignore[no-untyped-def]
    # given two phones of alice with samples in her keystroke and gait sets, and a window for one
    mine, theirs = enrol_phone(api, tenant), enrol_phone(api, tenant)
    for phone, factor in ((mine, "keystroke"), (theirs, "keystroke"), (theirs, "gait")):
        assert post_envelope(api, phone, phone.envelope(factor=factor)[1]).status_code == 202
    _sample(db, mine, "keystroke")
    _sample(db, theirs, "keystroke")
    _sample(db, theirs, "gait", status="held")
    w = api.post(
        "/v1/users/alice/enrolments",
        json={"factors": ["face"], "device_id": theirs.device_id},
        headers=tenant["headers"],
    ).json()
    # when the second phone is revoked
    assert (
        api.delete(f"/v1/devices/{theirs.device_id}", headers=tenant["headers"]).status_code == 200
    )
    # then its samples (held ones too) are gone, the other phone's stay
    left = db.execute(
        "SELECT device_id FROM enrolment_samples WHERE tenant_id = %s", (tenant["id"],)
    ).fetchall()
    assert [str(r["device_id"]) for r in left] == [mine.device_id]
    # and a rebuild is owed for each template it was in, and its window is closed
    owed = db.execute(
        "SELECT factor, reason FROM template_rebuilds WHERE tenant_id = %s ORDER BY factor",
        (tenant["id"],),
    ).fetchall()
    assert [(r["factor"], r["reason"]) for r in owed] == [
        ("gait", "device_revoked"),
        ("keystroke", "device_revoked"),
    ]
    window = api.get("/v1/users/alice/enrolments", headers=tenant["headers"]).json()
    assert [x["open"] for x in window if x["enrolment_id"] == w["enrolment_id"]] == [False]


def test_a_revoked_devices_scores_leave_the_trust(api, tenant, db, settings):  # type: ignore[no-untyped-def]
    from core.trust.service import user_trust

    # given a genuine score from alice's phone and, newer, an impostor's from a second phone
    # (one job claimed just before the revocation; fusion keeps each factor's newest score)
    mine, theirs = enrol_phone(api, tenant), enrol_phone(api, tenant)
    for phone, score, llr, age_s in ((mine, 0.99, 4.0, 60), (theirs, 0.02, -4.0, 0)):
        job_id = post_envelope(api, phone, phone.envelope(purpose="verify")[1]).json()["job_id"]
        db.execute(
            "INSERT INTO scores (job_id, tenant_id, user_id, factor, score, distance, llr, decision, samples,"
            " model_version, captured_at) SELECT id, tenant_id, user_id, factor, %s, 0.1, %s, %s, 4, 'm1',"
            " now() - make_interval(secs => %s) FROM jobs WHERE id = %s",
            (score, llr, score > 0.5, age_s, uuid.UUID(job_id)),
        )
    user_id = db.execute("SELECT user_id FROM devices WHERE id = %s", (mine.device_id,)).fetchone()[
        "user_id"
    ]

    def probability() -> float:
        return user_trust(db, user_id=user_id, threshold=0.5, settings=settings.trust).probability

    assert probability() < 0.5  # the second phone's impostor score is what counts now
    # when the second phone is revoked, then only the first one's score counts
    assert (
        api.delete(f"/v1/devices/{theirs.device_id}", headers=tenant["headers"]).status_code == 200
    )
    assert probability() > 0.5
