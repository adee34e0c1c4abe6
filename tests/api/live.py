"""The API served by uvicorn on a real socket, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from api.app import create_app
from api.server import listeners, server_config
from cli.stack import free_port
from core.settings import Settings


@contextmanager
def live_api(settings: Settings) -> Iterator[tuple[str, int]]:
    """(host, port) of a served app with the production server configuration."""
    config = server_config(
        settings, host="127.0.0.1", port=free_port(), app=create_app(settings), factory=False
    )
    server = uvicorn.Server(config)
    sockets = listeners(config, settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", config.port
    finally:
        server.should_exit = True
        thread.join(15)
        for s in sockets:
            s.close()


def read_response(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data
