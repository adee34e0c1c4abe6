"""`tacit worker --factor F`: one factor's scoring pool (Celery threads + one model batcher)."""

from __future__ import annotations

import argparse

from core.queues import FACTORS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run a scoring pool for one factor")
    p.add_argument("--factor", choices=FACTORS, required=True)
    p.add_argument("--device", default=None, help="cpu or cuda:N (default: TACIT_POOL__DEVICE)")
    p.add_argument("--threads", type=int, default=None, help="jobs held at once (default: TACIT_POOL__THREADS)")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=run)
    r = sub.add_parser("relay", help="run the outbox relay and the sweeper")
    r.set_defaults(func=run_relay)


def run(args: argparse.Namespace) -> int:
    from cli.console import setup_logging
    from core.settings import get_settings
    from workers import runtime

    setup_logging(args.loglevel)
    settings = get_settings()
    threads = args.threads or settings.pool.threads
    rt = runtime.init(args.factor, settings, device=args.device)
    from workers.app import app

    queue = settings.queues.score_queue(args.factor)
    try:
        app.worker_main([
            "worker", "-Q", queue, "-P", "threads", "-c", str(threads), "--prefetch-multiplier", "1",
            "-n", f"{args.factor}@%h", "-l", args.loglevel, "--without-gossip", "--without-mingle",
        ])
    finally:
        rt.close()
    return 0


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
    relay.run(get_settings(), stop)
    return 0
