"""Serving the API with uvicorn, with the limits a connection must keep (settings.http).

uvicorn bounds idle keep-alive connections and the connections per process, but not the
time a client may take to send its request line and headers. `header_deadline` adds that
to uvicorn's HTTP protocol: a connection that has not sent a whole header block within
``header_timeout_s`` (from when it opened, or since its last response), or whose header
block grows past ``max_header_bytes``, is answered 408 / 431 and closed. The body's own
deadline is `api.guard.RequestGuard`'s.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import Settings

_CLOSE = b"\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"


def _refusal(status: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return b"HTTP/1.1 " + status + _CLOSE % (len(body), body)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a deadline and a size cap on each header block.

    The limits ride on uvicorn's Config (`server_config` sets them), which worker
    processes receive pickled, so this class stays a plain module-level one.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.header_timeout_s: float = getattr(self.config, "tacit_header_timeout_s", 10.0)
        self.max_header_bytes: int = getattr(self.config, "tacit_max_header_bytes", 16 * 1024)
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._waiting_for: Any = self.cycle  # headers are complete once a new cycle exists
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout_s, self._expire
        )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse(self, status: bytes, code: str, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, code, message))
            self.transport.close()

    def _expire(self) -> None:
        self._header_timer = None
        if self.cycle is self._waiting_for:
            self._refuse(
                b"408 Request Timeout",
                "header_timeout",
                "the request headers did not arrive in time",
            )

    def data_received(self, data: bytes) -> None:
        waiting = self._header_timer is not None
        super().data_received(data)
        if not waiting:
            return
        if self.cycle is not self._waiting_for:
            self._disarm()
            return
        self._header_bytes += len(data)
        if self._header_bytes > self.max_header_bytes:
            self._refuse(
                b"431 Request Header Fields Too Large",
                "headers_too_large",
                "request headers too large",
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._disarm()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(
    settings: Settings, *, host: str, port: int, workers: int = 1, **extra: Any
) -> uvicorn.Config:
    """uvicorn's configuration for the API under ``settings.http``'s limits."""
    config = uvicorn.Config(
        extra.pop("app", "api.app:create_app"),
        factory=extra.pop("factory", True),
        host=host,
        port=port,
        workers=workers,
        http=DeadlineProtocol,
        timeout_keep_alive=max(1, round(settings.http.keep_alive_s)),
        limit_concurrency=settings.http.max_connections,
        # api.proxy reads X-Forwarded-* from settings.http.trusted_proxies only; uvicorn's own
        # rewriting would believe any local peer
        proxy_headers=False,
        log_level=extra.pop("log_level", "warning"),
        access_log=False,
        timeout_graceful_shutdown=10,
        **extra,
    )
    config.tacit_header_timeout_s = settings.http.header_timeout_s  # type: ignore[attr-defined]
    config.tacit_max_header_bytes = settings.http.max_header_bytes  # type: ignore[attr-defined]
    return config


def listeners(config: uvicorn.Config, settings: Settings) -> list[socket.socket]:
    """The public socket, plus the internal one for /ops and /metrics when a port is set."""
    sockets = [config.bind_socket()]
    internal = settings.ops.internal_port
    if internal is not None:
        sock = socket.socket(
            socket.AF_INET6 if ":" in config.host else socket.AF_INET, socket.SOCK_STREAM
        )
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((config.host, internal))
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Run the API until interrupted (``tacit api``)."""
    config = server_config(settings, host=host, port=port, workers=workers)
    sockets = listeners(config, settings)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)
