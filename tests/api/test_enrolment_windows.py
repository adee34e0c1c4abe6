"""Enrolment windows: enrol batches count only while the tenant has opened a window."""

from __future__ import annotations

import uuid

import pytest

from core.storage import make_store
from tests.api.conftest import enrol_phone, open_window, post_envelope


def _traces(db, settings, tenant) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(batches, jobs, objects) of the tenant."""
    row = db.execute(
        "SELECT (SELECT count(*) FROM batches WHERE tenant_id = %(t)s) AS b,"
        " (SELECT count(*) FROM jobs WHERE tenant_id = %(t)s) AS j",
        {"t": tenant["id"]},
    ).fetchone()
    return row["b"], row["j"], len(make_store(settings.storage).list(f"raw/{tenant['id']}/"))


def _windows(db, tenant) -> int:  # type: ignore[no-untyped-def]
    return db.execute(
        "SELECT count(*) AS n FROM enrolment_windows WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()["n"]


def test_enrol_upload_without_a_window_is_409_and_leaves_nothing(api, tenant, db, settings):  # type: ignore[no-untyped-def]
    # given a phone of a user for whom no window was opened
    phone = enrol_phone(api, tenant, window=False)
    # when it uploads an enrol batch
    r = post_envelope(api, phone, phone.envelope(purpose="enrol")[1])
    # then 409 enrolment_closed, and no row and no blob
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "enrolment_closed"
    assert _traces(db, settings, tenant) == (0, 0, 0)
    # and verify batches still go through
    assert post_envelope(api, phone, phone.envelope(purpose="verify")[1]).status_code == 202


def test_window_opened_by_the_tenant_lets_enrol_batches_in_and_records_it(api, tenant, db):  # type: ignore[no-untyped-def]
    # given a phone and a window for its user's keystroke profile
    phone = enrol_phone(api, tenant, window=False)
    r = api.post(
        "/v1/users/alice/enrolments",
        json={"factors": ["keystroke"], "ttl_s": 600},
        headers=tenant["headers"],
    )
    assert r.status_code == 201, r.text
    window = r.json()
    assert (
        window["factors"] == ["keystroke"]
        and window["device_id"] is None
        and window["open"] is True
    )
    assert set(window) >= {"enrolment_id", "user", "factors", "device_id", "expires_at"}
    # when it uploads a keystroke and a gait enrol batch
    ok = post_envelope(api, phone, phone.envelope(factor="keystroke")[1])
    other = post_envelope(api, phone, phone.envelope(factor="gait")[1])
    # then the keystroke one is accepted into that window, the gait one is refused
    assert ok.status_code == 202, ok.text
    assert other.status_code == 409 and other.json()["error"]["code"] == "enrolment_closed"
    row = db.execute(
        "SELECT b.enrolment_id FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE j.id = %s",
        (ok.json()["job_id"],),
    ).fetchone()
    assert str(row["enrolment_id"]) == window["enrolment_id"]


def test_window_for_one_device_refuses_the_others(api, tenant):  # type: ignore[no-untyped-def]
    # given two phones of alice and a window for the first only
    mine = enrol_phone(api, tenant, window=False)
    second = enrol_phone(api, tenant, window=False)
    open_window(api, tenant, "alice", device_id=mine.device_id)
    # then only the first phone's enrol batches are accepted
    assert post_envelope(api, mine, mine.envelope()[1]).status_code == 202
    r = post_envelope(api, second, second.envelope()[1])
    assert r.status_code == 409 and r.json()["error"]["code"] == "enrolment_closed"


def test_closed_and_expired_windows_refuse_and_a_retry_keeps_its_job(api, tenant, db):  # type: ignore[no-untyped-def]
    # given a phone that enrolled one batch inside a window
    phone = enrol_phone(api, tenant, window=False)
    window = open_window(api, tenant, "alice", factors=["keystroke"])
    batch_id, envelope = phone.envelope()
    first = post_envelope(api, phone, envelope)
    assert first.status_code == 202
    # when the tenant closes the window early
    r = api.delete(
        f"/v1/users/alice/enrolments/{window['enrolment_id']}", headers=tenant["headers"]
    )
    assert r.status_code == 200 and r.json()["open"] is False and r.json()["closed_at"]
    # then new enrol batches are refused, but a retry of the accepted one gets its job
    assert (
        post_envelope(api, phone, phone.envelope()[1]).json()["error"]["code"] == "enrolment_closed"
    )
    again = post_envelope(api, phone, envelope)
    assert again.status_code == 202 and again.json()["job_id"] == first.json()["job_id"]
    # and an expired window counts no more than a closed one
    open_window(api, tenant, "alice", factors=["keystroke"])
    db.execute(
        "UPDATE enrolment_windows SET expires_at = now() - interval '1 second' WHERE tenant_id = %s",
        (tenant["id"],),
    )
    assert post_envelope(api, phone, phone.envelope()[1]).status_code == 409
    listed = api.get("/v1/users/alice/enrolments", headers=tenant["headers"]).json()
    assert len(listed) == 2 and not any(w["open"] for w in listed)


def test_first_enrolment_of_a_new_user_opens_with_the_window(api, tenant, db):  # type: ignore[no-untyped-def]
    # given a user the tenant has never named: the window creates it, as a token does
    r = api.post(
        "/v1/users/newcomer/enrolments", json={"factors": ["face"]}, headers=tenant["headers"]
    )
    assert r.status_code == 201, r.text
    assert r.json()["user"] == "newcomer"
    phone = enrol_phone(api, tenant, "newcomer", window=False)
    assert post_envelope(api, phone, phone.envelope(factor="face")[1]).status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"factors": ["iris"]}, 422, "unknown_factor"),
        ({"factors": []}, 422, "unknown_factor"),
        ({"factors": ["keystroke"], "ttl_s": 0}, 422, "invalid_ttl"),
        ({"factors": ["keystroke"], "ttl_s": 10**9}, 422, "invalid_ttl"),
        ({"factors": ["keystroke"], "ttl_s": "soon"}, 422, "invalid_request"),
        ({"factors": ["keystroke"], "device_id": str(uuid.uuid4())}, 404, "device_not_found"),
        ({"factors": "keystroke"}, 422, "invalid_request"),
    ],
)
def test_bad_window_requests_are_4xx_and_write_nothing(api, tenant, db, body, status, code):  # type: ignore[no-untyped-def]
    r = api.post("/v1/users/someone-new/enrolments", json=body, headers=tenant["headers"])
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert _windows(db, tenant) == 0
    users = db.execute(
        "SELECT count(*) AS n FROM users WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()["n"]
    assert users == 0  # the user a window would have created is not left behind


def test_windows_for_another_tenants_device_or_user_are_refused(api, tenant, db):  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    # given another tenant with a phone of its user "alice"
    t2, key2 = create_tenant(db, name=f"other-{uuid.uuid4().hex[:6]}")
    other = {"id": t2.id, "headers": {"Authorization": f"Bearer {key2.token}"}}
    theirs = enrol_phone(api, other, "alice")
    # when this tenant opens a window naming that device, lists or closes their windows
    r = api.post(
        "/v1/users/alice/enrolments",
        json={"factors": ["keystroke"], "device_id": theirs.device_id},
        headers=tenant["headers"],
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "device_not_found"
    listed = api.get("/v1/users/alice/enrolments", headers=tenant["headers"])
    assert listed.status_code == 404 and listed.json()["error"]["code"] == "user_not_found"
    theirs_window = api.get("/v1/users/alice/enrolments", headers=other["headers"]).json()[0]
    closed = api.delete(
        f"/v1/users/alice/enrolments/{theirs_window['enrolment_id']}", headers=tenant["headers"]
    )
    assert closed.status_code == 404 and closed.json()["error"]["code"] == "enrolment_not_found"
    # then nothing of this tenant was written, and their window is still open
    assert _windows(db, tenant) == 0
    assert api.get("/v1/users/alice/enrolments", headers=other["headers"]).json()[0]["open"] is True


def test_window_for_a_device_of_another_user_or_revoked_is_refused(api, tenant, db):  # type: ignore[no-untyped-def]
    bob = enrol_phone(api, tenant, "bob", window=False)
    r = api.post(
        "/v1/users/alice/enrolments",
        json={"factors": ["keystroke"], "device_id": bob.device_id},
        headers=tenant["headers"],
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "device_of_another_user"
    api.delete(f"/v1/devices/{bob.device_id}", headers=tenant["headers"])
    r = api.post(
        "/v1/users/bob/enrolments",
        json={"factors": ["keystroke"], "device_id": bob.device_id},
        headers=tenant["headers"],
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "device_revoked"
    assert _windows(db, tenant) == 0


def test_windows_need_an_api_key(api):  # type: ignore[no-untyped-def]
    r = api.post("/v1/users/alice/enrolments", json={"factors": ["keystroke"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_missing"
