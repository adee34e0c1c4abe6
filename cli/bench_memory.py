"""`tacit bench memory`: peak RSS of an API process that is sent one huge unauthenticated POST.

Starts the API (uvicorn, the app of ``--source``, so another checkout's code can be
measured the same way) in a subprocess per way of sending, waits for ``/healthz``, reads
the process's peak RSS (``VmHWM``), sends ``--mib`` MiB to ``POST /v1/devices/redeem``
once with ``Content-Length`` and once chunked, and reads the peak again. Postgres and
Redis need not answer: the request is refused (or fails) before either is used.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 1024 * 1024
PATH = "/v1/devices/redeem"


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("memory", help="peak RSS of the API under one huge unauthenticated POST")
    p.add_argument("--mib", type=int, default=128, help="body size in MiB")
    p.add_argument(
        "--source",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="checkout whose api/ is served (default: this one)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc: this benchmark needs Linux")


def _start(source: Path, port: int, data_dir: str) -> subprocess.Popen:
    import httpx

    env = dict(
        os.environ,
        PYTHONPATH=str(source),
        TACIT_ENV="development",
        TACIT_STORAGE__BACKEND="local",
        TACIT_STORAGE__LOCAL_DIR=data_dir,
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=source,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"the API exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API did not answer /healthz within 60 s")


def _send(port: int, size: int, chunked: bool) -> tuple[int | None, float]:
    """Send the body (stopping when the server hangs up); the status line's code and seconds taken."""
    head = f"POST {PATH} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    piece = b"[" + b" " * (CHUNK - 1)
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(120)
        try:
            sock.sendall(head.encode())
            sent = 0
            while sent < size:
                n = min(CHUNK, size - sent)
                data = piece[:n]
                sock.sendall(b"%x\r\n%s\r\n" % (n, data) if chunked else data)
                sent += n
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early: the server closed while we were still sending
        try:
            reply = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            reply = b""
    seconds = time.perf_counter() - t0
    try:
        return int(reply.split(b" ", 2)[1]), seconds
    except (IndexError, ValueError):
        return None, seconds


def run(args: argparse.Namespace) -> int:
    source = args.source.resolve()
    if not (source / "api" / "app.py").is_file():
        print(f"error: {source} holds no api/app.py", file=sys.stderr)
        return 2
    size = args.mib * CHUNK
    results = []
    with tempfile.TemporaryDirectory(prefix="tacit-bench-memory-") as data_dir:
        for chunked in (False, True):
            way = "chunked" if chunked else "content-length"
            print(f"starting the API from {source} ({way}) ...", flush=True)
            port = _free_port()
            proc = _start(source, port, data_dir)
            try:
                before = _peak_kib(proc.pid)
                print(
                    f"  peak RSS before: {before / 1024:.0f} MiB; sending {args.mib} MiB ...",
                    flush=True,
                )
                status, seconds = _send(port, size, chunked)
                time.sleep(0.5)
                after = _peak_kib(proc.pid)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            print(
                f"  answer {status} after {seconds:.2f} s; peak RSS after: {after / 1024:.0f} MiB "
                f"(+{(after - before) / 1024:.0f} MiB)",
                flush=True,
            )
            results.append(
                {
                    "way": way,
                    "status": status,
                    "seconds": round(seconds, 3),
                    "peak_rss_before_mib": round(before / 1024, 1),
                    "peak_rss_after_mib": round(after / 1024, 1),
                    "growth_mib": round((after - before) / 1024, 1),
                }
            )
    if args.json:
        print(
            json.dumps(
                {"bench": "memory", "source": str(source), "mib": args.mib, "results": results}
            )
        )
    return 0
