"""Webhook signing secrets are sealed in the database with a key from settings, open only
where that key is, and a rotated-out secret is forgotten once its grace period is over."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from core.errors import Unavailable
from core.protocol.keyring import b64url
from core.webhooks import sealing
from tests.webhooks.test_delivery import emit_here

KEY = b64url(os.urandom(32))


@pytest.fixture()
def sealed_api(settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.app import create_app

    ws = settings.webhooks.model_copy(update={"secret_key": KEY})
    with TestClient(
        create_app(settings.model_copy(update={"webhooks": ws})), raise_server_exceptions=False
    ) as c:
        yield c


def _runtime(rt, key: str):  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import WebhookRuntime

    ws = rt.settings.webhooks.model_copy(update={"secret_key": key})
    return WebhookRuntime(rt.settings.model_copy(update={"webhooks": ws}), rt.pool)


def _raw(shown: str) -> bytes:
    return base64.b64decode(shown.removeprefix("whsec_"))


def test_the_stored_secret_is_sealed_and_deliveries_still_verify(
    sealed_api, tenant, db, receiver, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from tests.webhooks.conftest import register
    from workers.webhooks.delivery import deliver

    # given an endpoint registered by an API holding the sealing key
    ep = register(sealed_api, tenant, receiver.url, receiver=receiver)
    stored = bytes(
        db.execute("SELECT secret FROM webhook_endpoints WHERE id = %s", (ep["id"],)).fetchone()[
            "secret"
        ]
    )
    # then the database holds no trace of the secret the tenant was shown
    raw = _raw(ep["secret"])
    assert raw not in stored and stored != raw and len(stored) == 1 + 12 + 32 + 16
    # and the webhook pool, holding the same key, signs deliveries the receiver verifies
    _, did = emit_here(db, tenant["id"])
    assert deliver(_runtime(webhook_rt, KEY), did) == "succeeded"
    assert receiver.requests[-1].verified_by == [0]


def test_without_the_key_a_sealed_secret_does_not_open(
    sealed_api, tenant, db, receiver, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from tests.webhooks.conftest import register
    from workers.webhooks.delivery import deliver

    register(sealed_api, tenant, receiver.url, receiver=receiver)
    _, did = emit_here(db, tenant["id"])
    for key in ("", b64url(os.urandom(32))):
        with pytest.raises(Unavailable):
            deliver(_runtime(webhook_rt, key), did)
    # nothing was sent, and the delivery was not used up (its claim rolled back)
    assert receiver.requests == []
    assert (
        db.execute("SELECT attempts FROM webhook_deliveries WHERE id = %s", (did,)).fetchone()[
            "attempts"
        ]
        == 0
    )


def test_a_sealed_secret_moved_to_another_endpoint_does_not_open() -> None:
    key = sealing.parse_key(KEY)
    a, b = uuid.uuid4(), uuid.uuid4()
    stored = sealing.seal(key, a, b"s" * 32)
    assert sealing.unseal(key, a, stored) == b"s" * 32
    with pytest.raises(Unavailable):
        sealing.unseal(key, b, stored)


def test_the_previous_secret_is_cleared_after_its_grace_period(
    sealed_api, tenant, db, webhook_rt, settings
) -> None:  # type: ignore[no-untyped-def]
    from tests.webhooks.conftest import register
    from workers import relay

    ep = register(sealed_api, tenant, "http://127.0.0.1:9/hooks")
    r = sealed_api.post(
        f"/v1/webhooks/endpoints/{ep['id']}/rotate-secret",
        json={"grace_s": 3600},
        headers=tenant["headers"],
    )
    assert r.status_code == 200, r.text
    row = "SELECT previous_secret, previous_secret_expires_at FROM webhook_endpoints WHERE id = %s"
    assert db.execute(row, (ep["id"],)).fetchone()["previous_secret"] is not None
    # when the grace period is over and the relay sweeps
    db.execute(
        "UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = %s",
        (ep["id"],),
    )
    relay.sweep(webhook_rt.pool, settings)
    # then the old secret is gone from the database, not merely unused
    assert dict(db.execute(row, (ep["id"],)).fetchone()) == {
        "previous_secret": None,
        "previous_secret_expires_at": None,
    }


@pytest.mark.parametrize("bad", ["short", "A" * 44, "A" * 42 + "B", "A" * 42 + "="])
def test_a_malformed_sealing_key_is_refused_when_settings_load(bad: str) -> None:
    from pydantic import ValidationError

    from core.settings import WebhookSettings

    with pytest.raises(ValidationError):
        WebhookSettings(secret_key=bad)
    assert sealing.parse_key(WebhookSettings(secret_key=KEY).secret_key) is not None
