"""A multi-process pool for one factor: one model process (owns the device) and N CPU workers.

SIGTERM: the CPU workers stop taking jobs and finish what they hold (Celery warm
shutdown), then the model process stops. Jobs never started stay in the queue.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from core.settings import Settings
from workers.model_server import AUTHKEY_ENV, MODEL_SOCKET_ENV


def run_pool(args: argparse.Namespace, settings: Settings) -> int:
    from cli.stack import die_with_parent, wait_for

    device = args.device or settings.pool.device
    sock = Path(tempfile.gettempdir()) / f"tacit-model-{args.factor}-{os.getpid()}.sock"
    env = dict(os.environ, **{AUTHKEY_ENV: secrets.token_hex(16)})
    base = [sys.executable, "-m", "cli.main"]
    ready_file = env.pop("TACIT_READY_FILE", None)
    model = subprocess.Popen(
        [*base, "model-server", "--factor", args.factor, "--device", device, "--socket", str(sock)],
        env=env,
        preexec_fn=die_with_parent,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    cpu: list[subprocess.Popen] = []
    try:
        wait_for(lambda: model.poll() is None and sock.exists(), 300, "model process")
        cpu_env = dict(env, **{MODEL_SOCKET_ENV: str(sock)}, CUDA_VISIBLE_DEVICES="")
        readies = []
        for i in range(args.cpu_processes):
            rf = Path(tempfile.gettempdir()) / f"tacit-cpu-{os.getpid()}-{i}.ready"
            rf.unlink(missing_ok=True)
            readies.append(rf)
            argv = [*base, "worker", "--factor", args.factor, "--loglevel", args.loglevel]
            if args.threads:
                argv += ["--threads", str(args.threads)]
            cpu.append(
                subprocess.Popen(
                    argv, env=dict(cpu_env, TACIT_READY_FILE=str(rf)), preexec_fn=die_with_parent
                )
            )
        wait_for(lambda: all(r.exists() for r in readies), 300, "CPU workers")
        if ready_file:
            Path(ready_file).touch()
        while not stop.wait(1.0):
            if model.poll() is not None or any(p.poll() is not None for p in cpu):
                print("tacit: a pool process exited; stopping the pool", file=sys.stderr)
                break
        return 0
    finally:
        for p in cpu:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # warm shutdown: finish held jobs
        for p in cpu:
            try:
                p.wait(settings.reliability.running_deadline_s)
            except subprocess.TimeoutExpired:
                p.kill()
        if model.poll() is None:
            model.send_signal(signal.SIGTERM)
            try:
                model.wait(30)
            except subprocess.TimeoutExpired:
                model.kill()
