"""A webhook receiver for tests: a threaded http.server on 127.0.0.1 that verifies every request
with the `standardwebhooks` package and processes each webhook-id once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

# (webhook-id, how many times it was seen) -> (status, extra headers)
Answer = Callable[[str, int], tuple[int, dict[str, str]]]


@dataclass
class Delivery:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified_by: list[int]  # indexes of the secrets whose signature matched
    at: float


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)
    answer: Answer = lambda _id, _n: (200, {})
    hang: threading.Event | None = None  # when set up, each request waits on it
    requests: list[Delivery] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # webhook-id -> payload, once
    duplicates: int = 0
    unverified: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, extra = receiver.receive(dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.hang is not None:
            self.hang.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        if self.hang is not None:
            self.hang.wait(60)
        headers = {k.lower(): v for k, v in headers.items()}
        verified = []
        for i, secret in enumerate(self.secrets):
            try:
                payload = Webhook(secret).verify(body, headers)
                verified.append(i)
            except Exception:  # noqa: BLE001 - counted as unverified below
                continue
        wid = headers.get("webhook-id", "")
        with self._lock:
            self.requests.append(Delivery(wid, headers, body, verified, time.monotonic()))
            seen = sum(1 for r in self.requests if r.webhook_id == wid)
            if not verified:
                self.unverified += 1
                return 401, {}
            if wid in self.processed:
                self.duplicates += 1  # an idempotent receiver: acknowledged, not processed again
            else:
                self.processed[wid] = payload
        return self.answer(wid, seen)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.processed.values() if p["type"] == event_type]
