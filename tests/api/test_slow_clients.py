"""A client that trickles its request is cut off within the deadline (issue 14.7), on a real socket."""

from __future__ import annotations

import select
import socket
import time

import pytest

from tests.api.live import live_api, read_response

DEADLINE_S = 1.5


@pytest.fixture(scope="module")
def strict(settings):  # type: ignore[no-untyped-def]
    http = settings.http.model_copy(
        update={"header_timeout_s": DEADLINE_S, "body_timeout_s": DEADLINE_S, "max_connections": 4}
    )
    return settings.model_copy(update={"http": http})


def trickle(sock: socket.socket, data: bytes, every_s: float = 0.5) -> tuple[bytes, float]:
    """Send one byte every ``every_s`` until the server answers; (its answer, seconds taken)."""
    t0 = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            break
        assert time.monotonic() - t0 < 20, "never cut off"
    return read_response(sock, timeout=5), time.monotonic() - t0


def test_trickled_headers_are_cut_off(strict):  # type: ignore[no-untyped-def]
    # given a client sending its request line and headers at 2 bytes a second
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with live_api(strict) as (host, port), socket.create_connection((host, port)) as sock:
        reply, seconds = trickle(sock, request)
    # then the server answers 408 and closes within the header deadline
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"header_timeout" in reply
    assert seconds < DEADLINE_S + 1.5


def test_trickled_body_is_cut_off(strict):  # type: ignore[no-untyped-def]
    head = b"POST /v1/devices/redeem HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    with live_api(strict) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(head)
        reply, seconds = trickle(sock, b"{" + b" " * 399)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"body_timeout" in reply
    assert seconds < DEADLINE_S + 1.5


def test_huge_header_block_is_refused(strict):  # type: ignore[no-untyped-def]
    with live_api(strict) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024))
        reply = read_response(sock, timeout=5)
    assert reply.startswith(b"HTTP/1.1 431"), reply[:200]


def test_connections_are_capped(strict):  # type: ignore[no-untyped-def]
    # given as many idle connections as the cap allows
    with live_api(strict) as (host, port):
        idle = [socket.create_connection((host, port)) for _ in range(strict.http.max_connections)]
        try:
            time.sleep(0.3)
            with socket.create_connection((host, port)) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = read_response(sock, timeout=3)
        finally:
            for s in idle:
                s.close()
    # then one more is told the server is busy
    assert reply.startswith(b"HTTP/1.1 503"), reply[:200]


def test_a_normal_request_still_works(strict):  # type: ignore[no-untyped-def]
    with live_api(strict) as (host, port), socket.create_connection((host, port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = read_response(sock, timeout=5)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
