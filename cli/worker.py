"""`tacit worker --factor F`: one factor's scoring pool (Celery threads + one model batcher).

`tacit worker --webhooks`: the webhook delivery pool (many threads, no model code).
"""

from __future__ import annotations

import argparse
import sys

from core import factors as registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a scoring pool for one factor, or the webhook pool")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--factor", choices=registry.names())
    which.add_argument(
        "--webhooks", action="store_true", help="deliver webhooks (queue: TACIT_QUEUES__WEBHOOKS)"
    )
    p.add_argument("--device", default=None, help="cpu or cuda:N (default: TACIT_POOL__DEVICE)")
    p.add_argument(
        "--threads", type=int, default=None, help="jobs held at once (default: TACIT_POOL__THREADS)"
    )
    p.add_argument(
        "--cpu-processes",
        type=int,
        default=1,
        help="CPU worker processes feeding one model process (use several per GPU)",
    )
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=run)
    m = sub.add_parser("model-server", help="(internal) the model process of a multi-process pool")
    m.add_argument("--factor", choices=registry.names(), required=True)
    m.add_argument("--device", default="cpu")
    m.add_argument("--socket", required=True)
    m.set_defaults(func=run_model_server)
    r = sub.add_parser("relay", help="run the outbox relay and the sweeper")
    r.set_defaults(func=run_relay)


def run(args: argparse.Namespace) -> int:
    if args.webhooks:
        return run_webhooks(args)
    from cli.console import setup_logging
    from core.settings import get_settings
    from workers import runtime

    setup_logging(args.loglevel)
    import logging

    # Celery's own two lines per task ("received", "succeeded") cost more than the task's
    # bookkeeping; our `job_done` line carries the same facts with job id, tenant and timings.
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    settings = get_settings()
    if args.cpu_processes > 1:
        if settings.pool.backend == "oip":
            print(
                "tacit worker: with TACIT_POOL__BACKEND=oip the inference server owns the model; "
                "run more worker replicas instead of --cpu-processes",
                file=sys.stderr,
            )
            return 2
        from cli.pool import run_pool

        return run_pool(args, settings)
    threads = args.threads or settings.pool.threads
    from workers.oip import ModelMismatch

    try:
        rt = runtime.init(args.factor, settings, device=args.device)
    except ModelMismatch as e:
        print(f"tacit worker: refusing to start: {e}", file=sys.stderr)
        return 2
    from workers import metrics

    metrics.start(
        role="score",
        port=settings.metrics_port,
        redis_url=settings.redis_url,
        factor=args.factor,
        device=args.device or settings.pool.device,
    )
    from workers.app import app

    queue = settings.queues.score_queue(args.factor)
    try:
        _celery_worker(app, queue, threads, f"{args.factor}@%h", args.loglevel)
    finally:
        rt.close()
    return 0


def run_webhooks(args: argparse.Namespace) -> int:
    """Deliveries wait on receivers, not on CPU: many threads, each attempt bounded by its timeout."""
    from cli.console import setup_logging
    from core.settings import get_settings
    from workers.webhooks import delivery

    setup_logging(args.loglevel)
    settings = get_settings()
    threads = args.threads or settings.webhooks.threads
    rt = delivery.init(settings)
    from workers import metrics

    metrics.start(role="webhooks", port=settings.metrics_port, redis_url=settings.redis_url)
    from workers.webhooks.app import app

    try:
        _celery_worker(app, settings.queues.webhooks, threads, "webhooks@%h", args.loglevel)
    finally:
        rt.close()
    return 0


def _celery_worker(app, queue: str, threads: int, name: str, loglevel: str) -> None:  # type: ignore[no-untyped-def]
    """One Celery worker process on `queue`: a threads pool, one message prefetched per thread."""
    app.worker_main(
        [
            "worker",
            "-Q",
            queue,
            "-P",
            "threads",
            "-c",
            str(threads),
            "--prefetch-multiplier",
            "1",
            "-n",
            name,
            "-l",
            loglevel,
            "--without-gossip",
            "--without-mingle",
        ]
    )


def run_relay(args: argparse.Namespace) -> int:
    import signal
    import threading

    from cli.console import setup_logging
    from core.settings import get_settings
    from workers import relay

    setup_logging()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    from workers import metrics

    settings = get_settings()
    metrics.start(role="relay", port=settings.metrics_port, redis_url=settings.redis_url)
    relay.run(settings, stop)
    return 0


def run_model_server(args: argparse.Namespace) -> int:
    import os
    import signal
    import threading
    from pathlib import Path

    from cli.console import setup_logging
    from core.settings import get_settings
    from workers.model_server import AUTHKEY_ENV, serve

    setup_logging()
    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve(
        args.factor,
        args.device,
        Path(args.socket),
        bytes.fromhex(os.environ[AUTHKEY_ENV]),
        max_batch=settings.pool.max_batch,
        max_wait_s=settings.pool.max_wait_ms / 1e3,
        stop=stop,
    )
    return 0
