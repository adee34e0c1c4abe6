"""Tenant isolation and API keys: another tenant's jobs, users and devices are 404."""

from __future__ import annotations

import uuid

import pytest

from core.tenants.service import create_api_key, create_tenant, revoke_api_key
from tests.api.conftest import enrol_phone, post_envelope


@pytest.fixture()
def other(db):  # type: ignore[no-untyped-def]
    t, key = create_tenant(db, name=f"other-{uuid.uuid4().hex[:6]}")
    return {"id": t.id, "headers": {"Authorization": f"Bearer {key.token}"}}


def test_other_tenants_device_is_not_found(api, phone, other):  # type: ignore[no-untyped-def]
    # given alice's device in tenant A; when tenant B reads, lists or revokes it; then 404 / absent
    read = api.get(f"/v1/devices/{phone.device_id}", headers=other["headers"])
    assert read.status_code == 404 and read.json()["error"]["code"] == "device_not_found"
    revoke = api.delete(f"/v1/devices/{phone.device_id}", headers=other["headers"])
    assert revoke.status_code == 404 and revoke.json()["error"]["code"] == "device_not_found"
    assert api.get("/v1/devices", headers=other["headers"]).json() == []
    # and the device is untouched for its own tenant
    mine = api.get(f"/v1/devices/{phone.device_id}", headers=phone.tenant["headers"])
    assert mine.status_code == 200 and mine.json()["status"] == "active"


def test_other_tenants_user_is_not_found(api, phone, other):  # type: ignore[no-untyped-def]
    r = api.get("/v1/users/alice/devices", headers=other["headers"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    assert api.get("/v1/devices?user=alice", headers=other["headers"]).json() == []
    assert len(api.get("/v1/users/alice/devices", headers=phone.tenant["headers"]).json()) == 1


def test_other_tenants_jobs_are_invisible(api, phone, other):  # type: ignore[no-untyped-def]
    job_id = post_envelope(api, phone, phone.envelope()[1]).json()["job_id"]
    r = api.get(f"/v1/jobs/{job_id}", headers=other["headers"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert api.get("/v1/jobs", headers=other["headers"]).json()["items"] == []


def test_a_tenant_has_several_keys_and_a_revoked_one_stops_working(api, tenant, db):  # type: ignore[no-untyped-def]
    # given a second key for the tenant
    second = create_api_key(db, tenant_id=tenant["id"], label="second")
    bearer = {"Authorization": f"Bearer {second.token}"}
    assert api.get("/v1/devices", headers=bearer).status_code == 200
    # when it is revoked
    revoke_api_key(db, tenant_id=tenant["id"], key_id=second.id)
    # then it is refused with its own code, and the first key still works
    r = api.get("/v1/devices", headers=bearer)
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_revoked"
    assert api.get("/v1/devices", headers=tenant["headers"]).status_code == 200


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "api_key_missing"),
        ("Basic abc", "api_key_missing"),
        ("Bearer nonsense", "api_key_invalid"),
        ("Bearer tk_000000000000_" + "x" * 43, "api_key_invalid"),
    ],
)
def test_bad_api_keys_are_401(api, header, code):  # type: ignore[no-untyped-def]
    r = api.get("/v1/jobs", headers={"Authorization": header} if header else {})
    assert r.status_code == 401 and r.json()["error"]["code"] == code


def test_devices_cannot_use_tenant_routes_with_their_signature(api, phone):  # type: ignore[no-untyped-def]
    r = api.get("/v1/devices", headers=phone.signed_headers(b"", content_type=None))
    assert r.status_code == 401


def test_a_phone_of_another_tenant_cannot_upload_as_this_tenants_device(api, phone, other):  # type: ignore[no-untyped-def]
    # given a phone of tenant B; when it signs an upload naming tenant A's device; then 401
    intruder = enrol_phone(api, other, "eve")
    body = phone.envelope()[1]
    r = api.post(
        "/v1/batches",
        content=body,
        headers=intruder.signed_headers(body, device_id=phone.device_id),
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "signature_invalid"
