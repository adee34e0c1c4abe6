"""Rate limits a device cannot turn against its tenant, and per-address limits (issue 14.4)."""

from __future__ import annotations

import random
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.ratelimit import WINDOW_S
from tests.api.conftest import enrol_phone, post_envelope


def _inside_one_window() -> None:
    # a fixed window restarts each minute: start well inside one so counts do not reset mid-test
    if WINDOW_S - time.time() % WINDOW_S < 8:
        time.sleep(WINDOW_S - time.time() % WINDOW_S + 0.1)


@pytest.fixture()
def limited_api(settings):  # type: ignore[no-untyped-def]
    limits = settings.limits.model_copy(update={"device_rate_per_min": 2, "tenant_rate_per_min": 3})
    app = create_app(settings.model_copy(update={"limits": limits}))
    with TestClient(app, raise_server_exceptions=False) as c:
        _inside_one_window()
        yield c


def test_a_device_over_its_own_limit_does_not_spend_the_tenants(limited_api, tenant):  # type: ignore[no-untyped-def]
    # given one device far over its own limit
    noisy, quiet = (
        enrol_phone(limited_api, tenant, "noisy"),
        enrol_phone(limited_api, tenant, "quiet"),
    )
    codes = [post_envelope(limited_api, noisy, noisy.envelope()[1]).status_code for _ in range(11)]
    assert codes[:2] == [202, 202] and set(codes[2:]) == {429}
    # when another device of the tenant makes its first upload
    r = post_envelope(limited_api, quiet, quiet.envelope()[1])
    # then it is admitted: only the noisy device's two admitted uploads count for the tenant
    assert r.status_code == 202, r.text


def test_a_revoked_device_does_not_spend_the_tenants_budget(limited_api, tenant):  # type: ignore[no-untyped-def]
    # given a device that uploaded once (its key is cached) and was then revoked
    gone, a, b = (enrol_phone(limited_api, tenant, u) for u in ("gone", "a", "b"))
    assert post_envelope(limited_api, gone, gone.envelope()[1]).status_code == 202
    assert (
        limited_api.delete(f"/v1/devices/{gone.device_id}", headers=tenant["headers"]).status_code
        == 200
    )
    # when it keeps uploading
    codes = {post_envelope(limited_api, gone, gone.envelope()[1]).status_code for _ in range(6)}
    assert codes == {403}
    # then the tenant's other devices still have what is left of its budget (3 - 1)
    assert post_envelope(limited_api, a, a.envelope()[1]).status_code == 202
    assert post_envelope(limited_api, b, b.envelope()[1]).status_code == 202


def test_an_unknown_device_costs_one_query(api, phone):  # type: ignore[no-untyped-def]
    keys = api.app.state.uploads.keys
    unknown = str(uuid.uuid4())
    before = keys.queries
    for _ in range(5):
        body = phone.envelope()[1]
        r = post_envelope(api, phone, body, device_id=unknown)
        assert r.status_code == 404 and r.json()["error"]["code"] == "device_not_found"
    assert keys.queries - before == 1


def _address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/v1/keys", "keys_per_min"),
        ("GET", "/readyz", "readyz_per_min"),
        ("POST", "/v1/devices/redeem", "redeem_per_min"),
    ],
)
def test_unauthenticated_routes_are_limited_per_address(settings, method, path, field):  # type: ignore[no-untyped-def]
    limited = settings.model_copy(update={"http": settings.http.model_copy(update={field: 3})})
    app = create_app(limited)
    body = {"token": "x", "public_key": "x", "proof": "x"} if method == "POST" else None
    with TestClient(app, raise_server_exceptions=False, client=(_address(), 1)) as one:
        _inside_one_window()
        codes = [one.request(method, path, json=body).status_code for _ in range(5)]
        last = one.request(method, path, json=body)
    assert all(c != 429 for c in codes[:3]) and codes[3:] == [429, 429], codes
    assert last.json()["error"]["code"] == "rate_limited" and int(last.headers["Retry-After"]) >= 1
    with TestClient(app, raise_server_exceptions=False, client=(_address(), 1)) as other:
        assert other.request(method, path, json=body).status_code != 429
