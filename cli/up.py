"""`tacit up`: the whole system on one machine, no services installed.

Real PostgreSQL and Redis from wheels, objects in the data directory, then the API,
one worker per factor and the outbox relay. Ctrl-C or SIGTERM stops everything
cleanly; all state stays in the data directory for the next `tacit up`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

DEFAULT_DATA_DIR = Path(".tacit")
# The API is one Python process per core's worth of uploads (the GIL); the workers,
# Postgres and Redis need cores too, so a laptop gets a few at most.
DEFAULT_API_PROCESSES = max(1, min(4, os.cpu_count() or 1))


def add_running_stack_argument(p: argparse.ArgumentParser) -> None:
    """``--data-dir`` of a command that runs against `running_stack` (cli/stack.py)."""
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="use the stack `tacit up` runs on this data dir; by default start a temporary one",
    )


def add_api_processes_argument(p: argparse.ArgumentParser) -> None:
    """``--api-processes`` of the embedded stack (`tacit up`, or one a command starts itself)."""
    p.add_argument(
        "--api-processes",
        type=int,
        default=DEFAULT_API_PROCESSES,
        help=f"API processes of the embedded stack, sharing its port (default {DEFAULT_API_PROCESSES}: one per core, at most 4)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the embedded stack (Postgres, Redis, API, workers, relay)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where all state lives (default .tacit)",
    )
    p.add_argument(
        "--port", type=int, default=8000, help="API port (a free one is chosen if taken)"
    )
    add_api_processes_argument(p)
    p.add_argument(
        "--autoscale",
        action="store_true",
        help="start and stop factor worker processes on queue length, wait and rate (KEDA's rules)",
    )
    p.add_argument(
        "--autoscale-max",
        type=int,
        default=2,
        metavar="N",
        help="with --autoscale: at most N worker processes per factor (default 2)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.console import fail
    from cli.stack import Stack, StackError, free_port, read_state, start_services, write_state

    data_dir = args.data_dir.resolve()
    if read_state(data_dir):
        return fail(f"a stack is already running on {data_dir} (see {data_dir / 'stack.json'})")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"tacit: starting services in {data_dir} ...", file=sys.stderr)
    try:
        services = start_services(data_dir)
    except Exception as e:  # noqa: BLE001 - report any start-up failure in one line
        return fail(f"could not start services: {e}")
    stack = Stack(data_dir, services.env, free_port(args.port), api_processes=args.api_processes)
    autoscaler = None
    if getattr(args, "autoscale", False):
        from cli.autoscale import Autoscaler, local_figures

        stack.autoscaled = stack.factors
        autoscaler = Autoscaler(stack, local_figures(stack.factors, args.autoscale_max))
    try:
        print("tacit: starting API, workers and relay (loading models) ...", file=sys.stderr)
        stack.start()
        write_state(data_dir, stack)
        print(f"  api        {stack.api_url}  (docs {stack.api_url}/docs)")
        print(f"  postgres   {services.database_url}")
        print(f"  redis      {services.redis_url}")
        print(
            f"  objects    {services.env.get('TACIT_STORAGE__LOCAL_DIR') or services.env.get('TACIT_STORAGE__BUCKET')}"
        )
        for name, role in stack.roles.items():
            metrics = (
                f"  metrics http://127.0.0.1:{role.metrics_port}/metrics"
                if role.metrics_port
                else ""
            )
            print(
                f"  {name:<10} pid {role.proc.pid if role.proc else '-'}  log {role.log}{metrics}"
            )
        if autoscaler:
            print(
                f"  autoscale  {', '.join(f'{f} {s.min_replicas}-{s.max_replicas}' for f, s in autoscaler.pools_figures().items())}"
                f"  log {autoscaler.log_path}"
            )
        print("tacit: ready. Ctrl-C stops everything.", flush=True)
        while not stop.wait(1.0):
            for name in stack.supervise_once():
                print(f"tacit: {name} exited; restarted it", file=sys.stderr)
            if autoscaler:
                autoscaler.poll_once_logged()
        return 0
    except StackError as e:
        return fail(str(e))
    finally:
        print("tacit: stopping ...", file=sys.stderr)
        if autoscaler:
            autoscaler.stop()
        stack.stop()
        services.stop()
        (data_dir / "stack.json").unlink(missing_ok=True)
        print("tacit: stopped.", file=sys.stderr)
