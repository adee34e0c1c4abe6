"""One model process per GPU, fed by several CPU worker processes.

A GPU is only busy when its batches are full, and one Python process cannot do the
CPU side (messages, fetch, decrypt, decode, preprocess, writes) fast enough to fill
them. So a GPU pool runs N CPU worker processes (Celery threads each) that hand their
preprocessed arrays over a local socket to ONE model process, which owns CUDA, runs
the dynamic batcher and sends each job its rows back — the split Triton makes between
pre/post-processing and the model instance.

Wire: ``multiprocessing.connection`` messages ``(request_id, array)`` one way and
``(request_id, embeddings | error text)`` back.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import threading
from concurrent.futures import Future
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

import numpy as np

from core.factors import load_pipeline
from workers.batcher import DynamicBatcher
from workers.embedding import local_batcher

log = logging.getLogger("tacit.model")
AUTHKEY_ENV = "TACIT_MODEL_AUTHKEY"  # the socket's shared secret, hex
# set in a CPU worker process: where its model process listens
MODEL_SOCKET_ENV = "TACIT_MODEL_SOCKET"


class ModelServer:
    """Accepts CPU workers on a unix socket and batches their requests through one model."""

    def __init__(self, batcher: DynamicBatcher, path: Path, authkey: bytes) -> None:
        self.batcher, self.path = batcher, path
        path.unlink(missing_ok=True)
        self.listener = Listener(str(path), family="AF_UNIX", authkey=authkey)
        self._stop = threading.Event()

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self.listener.accept()
            except OSError:
                if self._stop.is_set():
                    return
                continue
            threading.Thread(
                target=self._serve, args=(conn,), daemon=True, name="model-conn"
            ).start()

    def _serve(self, conn: Connection) -> None:
        lock = threading.Lock()

        def reply(req_id: int, fut: Future[np.ndarray]) -> None:
            exc = fut.exception()
            msg = (req_id, f"{exc.__class__.__name__}: {exc}") if exc else (req_id, fut.result())
            with lock:
                try:
                    conn.send(msg)
                except OSError:
                    pass  # the worker went away; its jobs are redelivered

        while True:
            try:
                req_id, x = conn.recv()
            except (EOFError, OSError):
                conn.close()
                return
            self.batcher.submit(x).add_done_callback(functools.partial(reply, req_id))

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self.path.unlink(missing_ok=True)
        self.batcher.close()


class RemoteModel:
    """The CPU worker's side: `submit(x) -> Future`, an ``Embedder`` like a local DynamicBatcher."""

    def __init__(self, path: Path, authkey: bytes) -> None:
        self.conn = Client(str(path), family="AF_UNIX", authkey=authkey)
        self._ids = itertools.count()
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True, name="model-client")
        self._reader.start()

    def submit(self, x: np.ndarray) -> Future[np.ndarray]:
        fut: Future[np.ndarray] = Future()
        with self._lock:
            req_id = next(self._ids)
            self._pending[req_id] = fut
            self.conn.send((req_id, np.ascontiguousarray(x, dtype=np.float32)))
        return fut

    def _read(self) -> None:
        while True:
            try:
                req_id, out = self.conn.recv()
            except (EOFError, OSError):
                err = ConnectionError("model process is gone")
                with self._lock:
                    for fut in self._pending.values():
                        fut.set_exception(err)
                    self._pending.clear()
                return
            with self._lock:
                fut = self._pending.pop(req_id)
            if isinstance(out, str):
                fut.set_exception(RuntimeError(out))
            else:
                fut.set_result(out)

    def close(self) -> None:
        self.conn.close()


def serve(
    factor: str,
    device: str,
    path: Path,
    authkey: bytes,
    *,
    max_batch: int,
    max_wait_s: float,
    stop: threading.Event,
) -> None:
    """Load the model on `device` (the only process that touches CUDA), warm it, serve until `stop`."""
    pipeline = load_pipeline(factor, device=device)
    batcher = local_batcher(
        pipeline, device, max_batch=max_batch, max_wait_s=max_wait_s, name=f"model-{factor}"
    )
    server = ModelServer(batcher, path, authkey)
    threading.Thread(target=server.serve_forever, daemon=True, name="model-accept").start()
    log.info(
        json.dumps(
            {"event": "model_ready", "factor": factor, "device": device, "socket": str(path)}
        )
    )
    stop.wait()
    server.close()
