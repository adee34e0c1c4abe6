"""`tacit chaos [--json]`: fault scenarios against an embedded stack, counting what was lost.

Each scenario uploads real signed, encrypted batches, injects one fault, heals it, and
checks the promise: every accepted upload has exactly one job that ends done (or
failed with a reason), exactly one score, and no orphan rows or objects.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from core import factors as registry

SCENARIOS = ("kill_worker", "restart_redis", "restart_postgres", "store_down", "duplicate_uploads")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chaos", help="inject faults into an embedded stack and count lost or duplicated jobs"
    )
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--uploads", type=int, default=40, help="uploads per scenario")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the stack's state here (default: temporary)",
    )
    p.add_argument(
        "--factor",
        choices=registry.names(),
        default="keystroke",
        help="the factor whose pool is exercised",
    )
    p.add_argument(
        "--cpu-load",
        type=int,
        default=0,
        metavar="N",
        help="run N busy processes meanwhile (a loaded machine)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.console import fail
    from cli.faults import ChaosStack, cpu_load

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="tacit-chaos-"))
    results = []
    try:
        print(f"chaos: starting an embedded stack in {root} ...", file=sys.stderr)
        with cpu_load(args.cpu_load), ChaosStack(root, args.factor) as chaos:
            for name in args.scenarios:
                print(f"chaos: scenario {name}", file=sys.stderr)
                results.append(getattr(chaos, name)(args.uploads))
    except Exception as e:  # noqa: BLE001 - one clear line
        return fail(f"{e.__class__.__name__}: {e}")
    finally:
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'scenario':<20} {'accepted':>8} {'done':>6} {'failed':>6} {'lost':>5} {'dup':>4} {'orphans':>7}  note"
    )
    for r in results:
        print(
            f"{r['name']:<20} {r['accepted']:>8} {r['done']:>6} {r['failed']:>6} {r['lost']:>5} "
            f"{r['duplicated']:>4} {r['orphans']:>7}  {r['note']}"
        )
    if args.json:
        keys = ("name", "accepted", "done", "failed", "lost", "duplicated", "orphans")
        print(json.dumps({"scenarios": [{k: r[k] for k in keys} for r in results]}))
    bad = any(r["lost"] or r["duplicated"] or r["orphans"] for r in results)
    return 1 if bad else 0
