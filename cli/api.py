"""`tacit api`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the HTTP API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import shutil
    import tempfile

    import uvicorn

    from cli.console import setup_logging

    setup_logging()
    shared = None
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # /metrics on any worker then adds up the histograms of all of them
        shared = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tacit-api-metrics-")
    try:
        uvicorn.run(
            "api.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers,
            log_level="warning", access_log=False, timeout_graceful_shutdown=10,
        )
    finally:
        if shared:
            shutil.rmtree(shared, ignore_errors=True)
    return 0
