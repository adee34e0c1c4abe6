"""One HTTP/1.1 POST to a checked address under one wall-clock deadline.

An HTTP client's timeouts apply to each connect, read or write, so a receiver that
trickles a byte of its headers now and then holds the thread for as long as it likes.
Here every step (connect, TLS handshake, send, reading the status line and headers, a
little of the body) shares one deadline, and a watchdog shuts the socket down when it
passes, whatever step is blocked.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import cache

import h11

MAX_HEAD_BYTES = 16 * 1024  # status line and headers
RECV = 16 * 1024


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower case


class NoResponse(Exception):
    """No HTTP response before the deadline: connect, TLS, send or read failed or ran out of time.

    Deliberately one kind: which of these it was (refused, reset, silent, not TLS) would
    tell a tenant what listens on an address it may not reach.
    """


@cache
def _tls_context() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()


def post(
    address: str,
    port: int,
    *,
    tls_host: str | None,
    host_header: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    deadline_s: float,
    max_body: int = 64 * 1024,
) -> Response:
    """POST `body` to address:port (TLS with SNI and verification when `tls_host` is set) and
    return the status and headers; raises NoResponse if none arrives within `deadline_s`."""
    end = time.monotonic() + deadline_s

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise NoResponse("deadline passed")
        return remaining

    try:
        raw = socket.create_connection((address, port), timeout=left())
    except OSError as e:
        raise NoResponse(str(e)) from None
    guard = raw.dup()  # the same connection: shutting it down unblocks any step
    watchdog = threading.Timer(max(0.0, end - time.monotonic()), _shutdown, (guard,))
    watchdog.daemon = True
    watchdog.start()
    sock: socket.socket = raw
    response: Response | None = None
    try:
        if tls_host is not None:
            raw.settimeout(left())
            sock = _tls_context().wrap_socket(raw, server_hostname=tls_host)
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        out = _request_bytes(conn, target, host_header, headers, body)
        sock.settimeout(left())
        sock.sendall(out)  # one timeout for the whole send (Python >= 3.5)
        response = _read_head(conn, sock, left)
        _drain(conn, sock, left, max_body)
        return response
    except (OSError, ssl.SSLError, h11.ProtocolError, NoResponse, ValueError) as e:
        if response is not None:
            return response  # the answer came; only the rest of its body did not
        raise NoResponse(str(e)) from None
    finally:
        watchdog.cancel()
        sock.close()
        guard.close()


def _request_bytes(
    conn: h11.Connection, target: str, host_header: str, headers: dict[str, str], body: bytes
) -> bytes:
    """The whole POST as it goes on the wire: head, body and end of message."""
    request = h11.Request(
        method="POST",
        target=target,
        headers=[
            ("host", host_header),
            ("content-length", str(len(body))),
            ("connection", "close"),
            *headers.items(),
        ],
    )
    return conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())


def _shutdown(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _receive(conn: h11.Connection, sock: socket.socket, left) -> None:  # type: ignore[no-untyped-def]
    sock.settimeout(left())
    conn.receive_data(sock.recv(RECV))


def _read_head(conn: h11.Connection, sock: socket.socket, left) -> Response:  # type: ignore[no-untyped-def]
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            _receive(conn, sock, left)
        elif isinstance(event, h11.InformationalResponse):
            continue  # 100 Continue and the like
        elif isinstance(event, h11.Response):
            return Response(
                event.status_code,
                {bytes(k).decode("latin-1"): bytes(v).decode("latin-1") for k, v in event.headers},
            )
        else:
            raise NoResponse("connection closed before a response")


def _drain(conn: h11.Connection, sock: socket.socket, left, limit: int) -> None:  # type: ignore[no-untyped-def]
    """Read a little of the body (unused) so the connection ends cleanly."""
    read = 0
    while read <= limit:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            _receive(conn, sock, left)
        elif isinstance(event, h11.Data):
            read += len(event.data)
        else:
            return
