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

    from api.server import serve
    from cli.console import setup_logging
    from core.settings import get_settings

    setup_logging()
    shared = None
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # /metrics on any worker then adds up the histograms of all of them
        shared = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="tacit-api-metrics-"
        )
    try:
        serve(get_settings(), host=args.host, port=args.port, workers=args.workers)
    finally:
        if shared:
            shutil.rmtree(shared, ignore_errors=True)
    return 0
