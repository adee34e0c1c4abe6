"""Webhook attempts are bounded in wall-clock time, and an endpoint holds at most a few
delivery threads: real receiver sockets that trickle, hang or refuse."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from core.webhooks.ssrf import Target
from tests.webhooks.conftest import register
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import emit_here


class Trickler:
    """A TCP server that reads the request, then sends its status line and headers one
    byte every `gap_s` (a receiver holding a delivery thread as long as it likes), for
    `for_s` seconds at most."""

    def __init__(self, gap_s: float = 0.2, for_s: float = 8.0) -> None:
        self.gap_s, self.for_s = gap_s, for_s
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            t0 = time.monotonic()
            head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
            for byte in head:
                if self.stop.is_set() or time.monotonic() - t0 > self.for_s:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what we want
                time.sleep(self.gap_s)

    def close(self) -> None:
        self.stop.set()
        self.server.close()


@pytest.fixture()
def trickler() -> Iterator[Trickler]:
    t = Trickler()
    try:
        yield t
    finally:
        t.close()


def _quick(rt, **webhooks):  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import WebhookRuntime

    ws = rt.settings.webhooks.model_copy(update=webhooks)
    return WebhookRuntime(rt.settings.model_copy(update={"webhooks": ws}), rt.pool)


def test_a_receiver_trickling_its_headers_is_cut_at_the_deadline(trickler) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import post

    # given a receiver sending a header byte every 0.2 s (each read well inside 1 s)
    target = Target(trickler.url, "http", "127.0.0.1", trickler.port, ("127.0.0.1",), True)
    # when an attempt with a 1 s deadline posts to it
    t0 = time.monotonic()
    result = post(target, b"{}", {"content-type": "application/json"}, timeout_s=1.0)
    took = time.monotonic() - t0
    # then it ends at the deadline, as no response
    assert 0.9 < took < 3.0, took  # the trickle alone would last 8 s
    assert result.status_code is None and result.error.startswith("no_response")


def test_the_attempt_is_recorded_as_no_response_within_the_deadline(
    api, tenant, db, trickler, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    register(api, tenant, trickler.url)
    _, did = emit_here(db, tenant["id"])
    t0 = time.monotonic()
    assert deliver(_quick(webhook_rt, timeout_s=1.0), did) == "retry"
    assert time.monotonic() - t0 < 4.0
    err = db.execute(
        "SELECT error FROM webhook_attempts WHERE delivery_id = %s", (did,)
    ).fetchone()["error"]
    assert err.startswith("no_response")


def test_a_refused_port_and_a_silent_one_read_the_same() -> None:
    from workers.webhooks.delivery import post

    # given a closed port and a port that accepts and never answers
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        errors = set()
        for port in (closed_port, silent.getsockname()[1]):
            t = Target(f"http://127.0.0.1:{port}/", "http", "127.0.0.1", port, ("127.0.0.1",), True)
            errors.add(post(t, b"{}", {}, timeout_s=0.5).error)
        # then the attempt texts cannot tell them apart
        assert len(errors) == 1 and next(iter(errors)).startswith("no_response")
    finally:
        silent.close()


def test_an_endpoint_holds_at_most_its_cap_of_delivery_threads(api, tenant, db, webhook_rt) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    # given an endpoint that hangs, a cap of 2, and 4 deliveries due at once
    slow = Receiver(hang=threading.Event()).start()
    try:
        register(api, tenant, slow.url, receiver=slow)
        rt = _quick(webhook_rt, timeout_s=3.0, max_in_flight_per_endpoint=2, busy_delay_s=30.0)
        dids = [emit_here(db, tenant["id"])[1] for _ in range(4)]
        outcomes: list[str | None] = []
        threads = [
            threading.Thread(target=lambda d=d: outcomes.append(deliver(rt, d))) for d in dids
        ]
        for t in threads:
            t.start()
        time.sleep(1.0)
        # when they are all attempted: two hold threads on the endpoint, two are put back
        assert sorted(str(o) for o in outcomes) == ["busy", "busy"]
        assert len(slow.requests) <= 2
        held = db.execute(
            "SELECT count(*) AS n FROM webhook_deliveries WHERE id = ANY(%s)"
            " AND published_at IS NULL AND next_attempt_at > now() + interval '20 seconds'",
            (dids,),
        ).fetchone()["n"]
        assert held == 2  # postponed, and left for the relay to publish again
        slow.hang.set()  # type: ignore[union-attr]
        for t in threads:
            t.join(10)
        assert sorted(str(o) for o in outcomes).count("busy") == 2
    finally:
        slow.stop()


def _tls_server(tmp_path):  # type: ignore[no-untyped-def]
    """A one-shot HTTPS server for hooks.example on 127.0.0.1, and a context trusting its CA."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, str] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["request"] = tls.recv(65536).decode("latin-1")
            tls.sendall(b"HTTP/1.1 204 No Content\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener, client_ctx, seen


def test_an_https_attempt_verifies_the_certificate_for_the_name_and_reads_the_answer(
    tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks import http
    from workers.webhooks.delivery import post

    listener, ctx, seen = _tls_server(tmp_path)
    try:
        monkeypatch.setattr(http, "_tls_context", lambda: ctx)
        port = listener.getsockname()[1]
        target = Target(
            f"https://hooks.example:{port}/in?x=1",
            "https",
            "hooks.example",
            port,
            ("127.0.0.1",),
            True,
        )
        result = post(target, b'{"a":1}', {"content-type": "application/json"}, timeout_s=3.0)
        assert (result.status_code, result.error) == (204, None)
        assert seen["request"].startswith("POST /in?x=1 HTTP/1.1\r\n")
        assert f"host: hooks.example:{port}" in seen["request"].lower()
    finally:
        listener.close()
    # and a certificate for another name is no response
    listener, ctx, _ = _tls_server(tmp_path)
    try:
        monkeypatch.setattr(http, "_tls_context", lambda: ctx)
        port = listener.getsockname()[1]
        wrong = Target(
            f"https://other.example:{port}/", "https", "other.example", port, ("127.0.0.1",), True
        )
        assert post(wrong, b"{}", {}, timeout_s=3.0).error.startswith("no_response")
    finally:
        listener.close()
