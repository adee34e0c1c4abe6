"""Per-device and per-tenant upload rates: 429 rate_limited with Retry-After, nothing stored."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.ratelimit import WINDOW_S
from tests.api.conftest import enrol_phone, post_envelope


@pytest.fixture()
def limited_api(settings):  # type: ignore[no-untyped-def]
    """An app whose limits are small enough to reach in a test."""
    limits = settings.limits.model_copy(update={"device_rate_per_min": 2, "tenant_rate_per_min": 3})
    with TestClient(
        create_app(settings.model_copy(update={"limits": limits})), raise_server_exceptions=False
    ) as c:
        # a fixed window restarts each minute: start well inside one so counts do not reset mid-test
        if WINDOW_S - time.time() % WINDOW_S < 5:
            time.sleep(WINDOW_S - time.time() % WINDOW_S + 0.1)
        yield c


def _batches(db, tenant) -> int:  # type: ignore[no-untyped-def]
    return db.execute(
        "SELECT count(*) AS n FROM batches WHERE tenant_id = %s", (tenant["id"],)
    ).fetchone()["n"]


def test_a_device_over_its_rate_gets_429_with_retry_after(limited_api, tenant, db):  # type: ignore[no-untyped-def]
    phone = enrol_phone(limited_api, tenant)
    for _ in range(2):
        assert post_envelope(limited_api, phone, phone.envelope()[1]).status_code == 202
    r = post_envelope(limited_api, phone, phone.envelope()[1])
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= WINDOW_S
    assert _batches(db, tenant) == 2


def test_a_tenant_over_its_rate_gets_429(limited_api, tenant, db):  # type: ignore[no-untyped-def]
    phones = [enrol_phone(limited_api, tenant, f"user-{i}") for i in range(3)]
    codes = [
        post_envelope(limited_api, p, p.envelope()[1]).status_code for p in phones + phones[:1]
    ]
    assert codes == [202, 202, 202, 429]
    assert _batches(db, tenant) == 3
