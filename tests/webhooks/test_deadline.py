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
    assert 0.9 < took < 1.8, took
    assert result.status_code is None and result.error.startswith("no_response")


def test_the_attempt_is_recorded_as_no_response_within_the_deadline(
    api, tenant, db, trickler, webhook_rt
) -> None:  # type: ignore[no-untyped-def]
    from workers.webhooks.delivery import deliver

    register(api, tenant, trickler.url)
    _, did = emit_here(db, tenant["id"])
    t0 = time.monotonic()
    assert deliver(_quick(webhook_rt, timeout_s=1.0), did) == "retry"
    assert time.monotonic() - t0 < 2.5
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
        threads = [threading.Thread(target=lambda d=d: outcomes.append(deliver(rt, d))) for d in dids]
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
