"""`tacit demo`: simulated phones enrol and verify on every factor, end to end.

Against a running stack (`--data-dir` of a `tacit up`), or an embedded one it starts
itself. Each simulated person has stable traits per factor, so genuine batches should
score above impostor batches for a real reason. `--json` ends stdout with one JSON line.
"""

from __future__ import annotations

import argparse
import json

from cli.up import add_running_stack_argument
from core import factors as registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="simulate phones enrolling and verifying on every factor")
    p.add_argument(
        "--phones", type=int, default=5, help="simulated people, one phone each (default 5)"
    )
    add_running_stack_argument(p)
    p.add_argument("--enrol-batches", type=int, default=3)
    p.add_argument(
        "--verify-batches",
        type=int,
        default=2,
        help="genuine and impostor batches per phone and factor",
    )
    synthetic = registry.providing("synthetic")  # the factors that can make up users
    p.add_argument("--factors", nargs="+", choices=synthetic, default=list(synthetic))
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.console import fail
    from cli.simulate import run_simulation
    from cli.stack import StackError, running_stack

    if args.phones < 2:
        return fail("--phones must be at least 2 (impostors come from the other phones)")
    try:
        with running_stack(args.data_dir, factors=tuple(args.factors), label="demo") as (
            api_url,
            env,
        ):
            summary = run_simulation(
                api_url,
                env["DATABASE_URL"],
                phones=args.phones,
                factors=args.factors,
                enrol_batches=args.enrol_batches,
                verify_batches=args.verify_batches,
                seed=args.seed,
            )
    except StackError as e:
        return fail(str(e))
    except Exception as e:  # noqa: BLE001 - one clear line for any failure
        return fail(f"{e.__class__.__name__}: {e}")
    print_table(summary)
    if args.json:
        print(json.dumps(summary))
    ok = summary["failed"] == 0 and summary["done"] == summary["jobs"]
    return 0 if ok else 1


def print_table(s: dict) -> None:
    e2e = s["upload_to_score_ms"]
    print(
        f"jobs {s['jobs']}   done {s['done']}   failed {s['failed']}   "
        f"upload-to-score p50 {e2e['p50']:.0f} ms   p99 {e2e['p99']:.0f} ms"
    )
    print(f"{'factor':<10} {'genuine mean':>13} {'impostor mean':>14} {'separated':>10}")
    for f, v in s["factors"].items():
        sep = "yes" if v["genuine_mean"] > v["impostor_mean"] else "NO"
        print(f"{f:<10} {v['genuine_mean']:>13.3f} {v['impostor_mean']:>14.3f} {sep:>10}")
