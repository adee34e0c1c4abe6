"""`tacit bench worker|ingest|memory`: benchmarks that print figures (and `--json` as the last line)."""

from __future__ import annotations

import argparse

from cli import bench_memory
from core import factors as registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (worker pool, ingest)")
    bsub = p.add_subparsers(dest="bench", required=True)
    w = bsub.add_parser(
        "worker", help="model limit vs the full worker path, with and without batching"
    )
    w.add_argument("--factor", choices=registry.names(), required=True)
    w.add_argument("--device", default="cpu")
    w.add_argument("--jobs", type=int, default=400, help="verification jobs per measured run")
    w.add_argument(
        "--rows-per-job", type=int, default=None, help="samples in each job (factor default)"
    )
    w.add_argument(
        "--max-batch", type=int, default=None, help="rows per forward pass (factor default)"
    )
    w.add_argument("--threads", type=int, default=32, help="jobs a worker holds at once")
    w.add_argument("--processes", type=int, default=1, help="independent pools sharing the queue")
    w.add_argument(
        "--cpu-processes",
        type=int,
        default=1,
        help="CPU worker processes per pool feeding one model process (1: model in-process)",
    )
    w.add_argument("--users", type=int, default=20, help="enrolled users the jobs are spread over")
    w.add_argument(
        "--celery-messages",
        type=int,
        default=3000,
        help="no-op messages drained by a stock Celery worker in the same run (its per-message ceiling)",
    )
    w.add_argument(
        "--backend",
        choices=("local", "oip"),
        default="local",
        help="oip: also measure the pool with its model in an OIP server (--oip-url), in the same run",
    )
    w.add_argument(
        "--oip-url",
        default="",
        help="the inference server (http://host:port or grpc://host:port) "
        "serving `tacit export FACTOR --triton-repo` output",
    )
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=_run_worker)
    try:
        import cli.bench_ingest as bench_ingest
    except ModuleNotFoundError as e:
        if e.name != "cli.bench_ingest":
            raise
    else:
        bench_ingest.register(bsub)
    bench_memory.register(bsub)
    __import__("cli.bench_decode").bench_decode.register(bsub)


def _run_worker(args: argparse.Namespace) -> int:
    from cli.bench_worker import run

    return run(args)
