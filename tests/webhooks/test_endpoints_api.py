"""Registering, reading, rotating and deleting endpoints through the API; SSRF refusals at registration."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.webhooks.conftest import register


def test_create_shows_the_secret_once_and_lists_without_it(api, tenant, receiver) -> None:  # type: ignore[no-untyped-def]
    created = register(api, tenant, receiver.url, ["job.completed", "trust.changed"])
    assert created["secret"].startswith("whsec_") and created["status"] == "enabled"
    assert created["event_types"] == ["job.completed", "trust.changed"]
    listed = api.get("/v1/webhooks/endpoints", headers=tenant["headers"]).json()
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    one = api.get(f"/v1/webhooks/endpoints/{created['id']}", headers=tenant["headers"]).json()
    assert one["url"] == receiver.url and one["disabled_reason"] is None


def test_another_tenant_cannot_see_rotate_or_delete_an_endpoint(api, tenant, db, receiver) -> None:  # type: ignore[no-untyped-def]
    from core.tenants.service import create_tenant

    created = register(api, tenant, receiver.url)
    _, key = create_tenant(db, name="other")
    other = {"Authorization": f"Bearer {key.token}"}
    base = f"/v1/webhooks/endpoints/{created['id']}"
    assert api.get(base, headers=other).status_code == 404
    assert api.post(base + "/rotate-secret", headers=other).status_code == 404
    assert api.delete(base, headers=other).status_code == 404
    assert api.get(base + "/attempts", headers=other).status_code == 404
    assert api.get("/v1/webhooks/endpoints", headers=other).json() == []
    # and the owner still deletes it
    assert api.delete(base, headers=tenant["headers"]).status_code == 204
    assert api.get(base, headers=tenant["headers"]).status_code == 404


def test_rotation_returns_a_new_secret_with_a_grace_period(api, tenant, receiver) -> None:  # type: ignore[no-untyped-def]
    created = register(api, tenant, receiver.url)
    r = api.post(
        f"/v1/webhooks/endpoints/{created['id']}/rotate-secret",
        json={"grace_s": 3600},
        headers=tenant["headers"],
    )
    assert r.status_code == 200, r.text
    assert (
        r.json()["secret"] != created["secret"]
        and r.json()["previous_secret_expires_at"] is not None
    )


def test_unknown_event_types_are_refused(api, tenant, receiver) -> None:  # type: ignore[no-untyped-def]
    r = api.post(
        "/v1/webhooks/endpoints",
        json={"url": receiver.url, "event_types": ["job.exploded"]},
        headers=tenant["headers"],
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]:8443/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "http://127.0.0.1:9/hook",
    ],
)
def test_registration_refuses_internal_targets_without_an_allowlist(settings, tenant, url) -> None:  # type: ignore[no-untyped-def]
    # given an API whose operator allowlisted nothing
    from api.app import create_app

    strict = settings.model_copy(
        update={"webhooks": settings.webhooks.model_copy(update={"allowlist": []})}
    )
    with TestClient(create_app(strict), raise_server_exceptions=False) as client:
        r = client.post("/v1/webhooks/endpoints", json={"url": url}, headers=tenant["headers"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "webhook_url_refused"


def test_http_to_a_public_host_is_refused_and_the_allowlist_admits_loopback(
    api, tenant, receiver
) -> None:  # type: ignore[no-untyped-def]
    # the test settings allowlist 127.0.0.1/32 only
    r = api.post(
        "/v1/webhooks/endpoints", json={"url": "https://[::1]/hook"}, headers=tenant["headers"]
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "webhook_url_refused"
    assert (
        api.post(
            "/v1/webhooks/endpoints", json={"url": receiver.url}, headers=tenant["headers"]
        ).status_code
        == 201
    )
