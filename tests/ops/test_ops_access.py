"""Operator access (issue 14.3): strong tokens only, server-side sessions, Secure behind TLS, throttled login."""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets

import httpx
import pydantic
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.live import live_api
from tests.ops.conftest import OPS_TOKEN

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WEAK = ["", "short", "dev-ops-token", "local-ops-token-change-me", "a" * 64, "0123456789abcdef" * 2]


@pytest.mark.parametrize("env", ["test", "production"])
@pytest.mark.parametrize("token", WEAK)
def test_settings_refuse_weak_ops_tokens_outside_development(env, token):  # type: ignore[no-untyped-def]
    from core.settings import Settings

    with pytest.raises(pydantic.ValidationError, match="32 random bytes|must be set"):
        Settings(env=env, ops_token=token)


def test_settings_accept_strong_tokens_and_development_defaults():  # type: ignore[no-untyped-def]
    from core.settings import Settings

    assert Settings(env="production", ops_token=secrets.token_hex(32))
    assert Settings(env="production", ops_token=secrets.token_urlsafe(32))
    assert Settings(env="development", ops_token="dev-ops-token")


def _address() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def _login(browser: TestClient) -> httpx.Response:
    return browser.post(
        "/ops/login", content=f"token={OPS_TOKEN}", headers=FORM, follow_redirects=False
    )


def test_session_cookie_is_random_and_ends_server_side(ops_settings):  # type: ignore[no-untyped-def]
    app = create_app(ops_settings)
    with TestClient(app, raise_server_exceptions=False, client=(_address(), 5000)) as browser:
        # given two logins with the same token
        first, second = _login(browser), _login(browser)
        a, b = first.cookies["tacit_ops"], second.cookies["tacit_ops"]
        # then the cookies differ and neither is derived from the token
        assert a != b
        old_style = hmac.new(
            OPS_TOKEN.encode(), b"tacit-ops-session-v1", hashlib.sha256
        ).hexdigest()
        assert old_style not in (a, b)
        # and the session lives in Redis with an expiry
        key = "tacit:ops:session:" + hashlib.sha256(b.encode()).hexdigest()
        ttl = app.state.redis.ttl(key)
        assert 0 < ttl <= ops_settings.ops.session_ttl_s
        browser.cookies.set("tacit_ops", b, path="/ops")
        assert browser.get("/ops/api/overview").status_code == 200
        # when the server forgets the session (expiry), the cookie opens nothing
        app.state.redis.delete(key)
        assert browser.get("/ops/api/overview").status_code == 401
        # and signing out ends the other session too, even if the browser kept its cookie
        browser.cookies.set("tacit_ops", a, path="/ops")
        assert browser.get("/ops/api/overview").status_code == 200
        browser.post("/ops/logout", follow_redirects=False)
        browser.cookies.set("tacit_ops", a, path="/ops")
        assert browser.get("/ops/api/overview").status_code == 401


def test_cookie_is_secure_only_behind_a_trusted_tls_proxy(ops_settings):  # type: ignore[no-untyped-def]
    trusted = ops_settings.model_copy(
        update={"http": ops_settings.http.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})}
    )
    for settings, secure in ((trusted, True), (ops_settings, False)):
        with live_api(settings) as (host, port):
            r = httpx.post(
                f"http://{host}:{port}/ops/login",
                content=f"token={OPS_TOKEN}",
                headers={**FORM, "X-Forwarded-Proto": "https"},
            )
        assert r.status_code == 303, r.text
        assert ("secure" in r.headers["set-cookie"].lower().split("; ")) is secure


def test_login_is_throttled_per_address(ops_settings):  # type: ignore[no-untyped-def]
    limited = ops_settings.model_copy(
        update={"ops": ops_settings.ops.model_copy(update={"login_attempts_per_min": 5})}
    )
    address = _address()
    with TestClient(
        create_app(limited), raise_server_exceptions=False, client=(address, 1)
    ) as browser:
        answers = [
            browser.post("/ops/login", content="token=guess", headers=FORM).status_code
            for _ in range(7)
        ]
        refused = browser.post("/ops/login", content=f"token={OPS_TOKEN}", headers=FORM)
    # the right token is refused too once the address is over its attempts
    assert answers[:5] == [401] * 5 and answers[5:] == [429, 429]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    with TestClient(
        create_app(limited), raise_server_exceptions=False, client=(_address(), 1)
    ) as other:
        assert _login(other).status_code == 303  # another address is not affected


def test_internal_port_serves_ops_and_metrics_only(ops_settings):  # type: ignore[no-untyped-def]
    from cli.stack import free_port

    internal = free_port()
    settings = ops_settings.model_copy(
        update={"ops": ops_settings.ops.model_copy(update={"internal_port": internal})}
    )
    bearer = {"Authorization": f"Bearer {OPS_TOKEN}"}
    with live_api(settings) as (host, port):
        public = httpx.get(f"http://{host}:{port}/ops/api/overview", headers=bearer)
        metrics = httpx.get(f"http://{host}:{port}/metrics")
        inside = httpx.get(f"http://{host}:{internal}/ops/api/overview", headers=bearer)
        inside_metrics = httpx.get(f"http://{host}:{internal}/metrics")
        tenant_inside = httpx.get(f"http://{host}:{internal}/v1/keys")
        health = httpx.get(f"http://{host}:{port}/healthz")
    assert public.status_code == metrics.status_code == tenant_inside.status_code == 404
    assert inside.status_code == inside_metrics.status_code == health.status_code == 200
