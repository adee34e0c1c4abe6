"""Every route reads at most its own cap, refused from Content-Length or by counting (issue 14.1)."""

from __future__ import annotations

import socket
import time

from tests.api.live import live_api, read_response

MIB = 1024 * 1024


def test_redeem_refuses_a_big_declared_body(api):  # type: ignore[no-untyped-def]
    # given an unauthenticated JSON route, when a body over the JSON cap is sent
    r = api.post(
        "/v1/devices/redeem",
        content=b"{" + b" " * MIB + b"}",
        headers={"Content-Type": "application/json"},
    )
    # then it is refused as too large, not parsed
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"


def test_chunked_body_is_counted(api):  # type: ignore[no-untyped-def]
    # given no Content-Length (chunked), when the chunks add up past the cap
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(32):
            yield b" " * 8192

    r = api.post(
        "/v1/devices/redeem", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"


def test_login_form_has_a_tiny_cap(api):  # type: ignore[no-untyped-def]
    r = api.post(
        "/ops/login",
        content=b"token=" + b"a" * 16 * 1024,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_tenant_json_route_cap(api, tenant):  # type: ignore[no-untyped-def]
    body = {"url": "https://example.com/hook", "description": "x" * 100_000}
    r = api.post("/v1/webhooks/endpoints", json=body, headers=tenant["headers"])
    assert r.status_code == 413, r.text


def test_upload_keeps_the_upload_cap(api, settings, phone):  # type: ignore[no-untyped-def]
    # a body between the JSON cap and the upload cap reaches the upload checks
    body = b"\0" * (settings.http.json_body_bytes * 2)
    r = api.post("/v1/batches", content=body, headers=phone.signed_headers(body))
    assert r.status_code != 413 and r.status_code < 500, r.text
    big = b"\0" * (settings.limits.max_body_bytes + 1)
    r = api.post("/v1/batches", content=big, headers=phone.signed_headers(big))
    assert r.status_code == 413


def test_refused_before_the_body_is_sent(settings):  # type: ignore[no-untyped-def]
    # given a real socket, when a client declares 128 MiB and sends none of it
    with live_api(settings) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(
            b"POST /v1/devices/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (128 * MIB)
        )
        t0 = time.monotonic()
        reply = read_response(sock, timeout=5)
    # then the refusal comes at once, without waiting for the body
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"body_too_large" in reply
    assert time.monotonic() - t0 < 3
