"""A stock Celery worker that does nothing per message: the per-message ceiling of Celery.

`tacit bench worker` runs it in the same invocation as the scoring pool, on the same
broker, with the project's Celery settings (threads pool, `TACIT_POOL__THREADS` threads,
acks_late, no prefetch) and messages byte for byte like the score jobs (same task name,
same body), on a queue of its own; the task returns at once. Run as
``python -m cli.bench_celery --queue Q --threads N --transport stock|tacit --ready FILE``.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from pathlib import Path

QUEUE = "bench.celery-noop"


def _app(transport: str, ready: Path | None):  # type: ignore[no-untyped-def]
    from celery import Celery
    from celery.signals import worker_ready

    from core.publisher import celery_config
    from core.queues import TASK_SCORE
    from core.settings import get_settings
    from workers.broker import transport_for

    app = Celery("tacit-bench-noop")
    app.conf.update(celery_config(get_settings()))
    if transport == "tacit":  # the pools' transport (workers/broker.py)
        app.conf.broker_transport = transport_for(app.conf.broker_url)
    app.conf.update(worker_send_task_events=False, task_send_sent_event=False)

    @app.task(name=TASK_SCORE)
    def noop(job_id: str) -> None:
        return None

    def _ready(**_: object) -> None:
        if ready is not None:
            ready.touch()

    worker_ready.connect(_ready, weak=False)  # a local function: held strongly

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queue", default=QUEUE)
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--transport", choices=("stock", "tacit"), default="stock")
    p.add_argument("--ready", type=Path, default=None)
    args = p.parse_args()
    for name in ("celery.app.trace", "celery.worker.strategy"):  # as the pools do
        logging.getLogger(name).setLevel(logging.WARNING)
    app = _app(args.transport, args.ready)
    app.worker_main(
        [
            "worker",
            "-Q",
            args.queue,
            "-P",
            "threads",
            "-c",
            str(args.threads),
            "--prefetch-multiplier",
            "1",
            "-n",
            f"noop-{uuid.uuid4().hex[:6]}@%h",
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def measure(
    env: dict[str, str], root: Path, *, messages: int, threads: int, transport: str
) -> float:
    """Messages/s one no-op worker process drains from a queue that holds `messages` at once."""
    import subprocess
    import sys

    import redis

    from cli.console import Progress
    from cli.stack import wait_for
    from core.publisher import score_message

    client = redis.Redis.from_url(env["REDIS_URL"])
    queue = f"{QUEUE}-{transport}"
    client.delete(queue)
    ready = root / f"noop-{transport}.ready"
    ready.unlink(missing_ok=True)
    log = open(root / f"noop-{transport}.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.bench_celery",
            "--queue",
            queue,
            "--threads",
            str(threads),
            "--transport",
            transport,
            "--ready",
            str(ready),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: ready.exists(), 120, "the no-op Celery worker")
        time.sleep(0.5)
        bodies = [score_message(uuid.uuid4(), queue, origin="bench") for _ in range(messages)]
        bar = Progress(f"celery no-op ({transport})", messages)
        t0 = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for i in range(0, messages, 1000):
            pipe.lpush(queue, *bodies[i : i + 1000])
        pipe.execute()
        while True:  # drained and every message acknowledged (acks_late: after the task ran)
            left = int(client.llen(queue)) + int(client.hlen("unacked"))
            bar.update(messages - min(messages, left))
            if left == 0:
                break
            time.sleep(0.005)
        elapsed = time.perf_counter() - t0
        bar.finish()
        return messages / elapsed
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


if __name__ == "__main__":
    main()
