"""`tacit capacity`: what a day of N users costs per scaling policy (docs/capacity.md).

A simulation (``core/capacity.py``) of one day of uploads on the profile's diurnal curve
through each factor pool under the scaler's rules. ``--validate`` instead runs the
embedded stack with ``--autoscale`` through a short recorded trace and compares what it
measured with the simulator's prediction for that trace (``cli/capacity_validate.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capacity", help="simulate a day of N users: replica-hours, latency, load per tier"
    )
    p.add_argument("--users", type=int, default=100_000, help="active users (default 100000)")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="JSON profile merged over the default (see --write-profile)",
    )
    p.add_argument(
        "--policy",
        choices=("always-on", "zero", "age"),
        default="age",
        help="always-on (sized for the peak), zero (list length, min 0) or age (+ waiting time)",
    )
    p.add_argument(
        "--bench",
        type=Path,
        default=None,
        metavar="FILE",
        help="`tacit bench worker --json` output (one or more runs): per-replica rates from it",
    )
    p.add_argument("--step", type=float, default=1.0, help="simulation step in seconds (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="DIR",
        help="write replicas.png (replicas and backlog over the day) and plan.json to DIR",
    )
    p.add_argument(
        "--write-profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the default profile to FILE for editing, then exit",
    )
    p.add_argument(
        "--validate",
        action="store_true",
        help="run the embedded stack with --autoscale through a short trace; compare with the model",
    )
    p.add_argument(
        "--json", action="store_true", help="end with one JSON line (see docs/capacity.md)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.console import fail, say
    from core import capacity

    if args.write_profile is not None:
        args.write_profile.write_text(json.dumps(capacity.default_profile(), indent=2) + "\n")
        print(f"wrote {args.write_profile}")
        return 0
    try:
        profile = capacity.load_profile(args.profile)
        if args.bench is not None:
            from cli.bench_worker import ROWS_PER_JOB

            rates = capacity.service_rates_from_bench(
                args.bench.read_text().splitlines(), ROWS_PER_JOB
            )
            if not rates:
                return fail(f"{args.bench} holds no `tacit bench worker --json` line")
            for factor, rate in rates.items():
                profile["factors"].setdefault(factor, {})["jobs_per_s_per_replica"] = rate
    except (OSError, ValueError, KeyError) as e:
        return fail(f"could not read the profile: {e}")
    if args.validate:
        from cli.capacity_validate import validate

        return validate(args, profile)
    if args.users < 1 or args.step <= 0:
        return fail("--users must be at least 1 and --step positive")
    from cli.scale import pool_scaling
    from core.settings import Settings

    scaling = pool_scaling(Settings().scaling)
    say(f"tacit capacity: simulating one day of {args.users} users, policy {args.policy} ...")
    plan = capacity.plan_day(
        args.users, profile, policy=args.policy, scaling=scaling, dt=args.step, seed=args.seed
    )
    print_plan(plan)
    if args.report is not None:
        write_report(args.report, plan)
        print(f"report: {args.report / 'replicas.png'}")
    if args.json:
        print(json.dumps(capacity.summary_json(plan)))
    return 0


def print_plan(plan: dict[str, Any]) -> None:
    print(
        f"users {plan['users']}  policy {plan['policy']}  uploads/s mean {plan['mean_uploads_per_s']:.1f}"
        f" peak {plan['peak_uploads_per_s']:.1f}"
    )
    print(
        f"{'factor':<10} {'jobs/day':>12} {'replica-h':>10} {'peak':>5} {'p50 s':>8} {'p99 s':>8}"
        f" {'max backlog':>12}"
    )
    for factor, r in plan["factors"].items():
        peak = max((n for _, n in r.replicas), default=0)
        print(
            f"{factor:<10} {r.jobs:>12} {r.replica_seconds / 3600:>10.1f} {peak:>5} {r.p50_s:>8.2f}"
            f" {r.p99_s:>8.2f} {r.max_backlog:>12}"
        )
    print("replicas over the day (hourly, at the hour):")
    for factor, r in plan["factors"].items():
        hourly = [n for t, n in r.replicas if t % 3600 < 60]
        print(f"  {factor:<10} " + " ".join(f"{n:>2}" for n in hourly))
    print(
        f"other tiers: API processes {plan['api_processes']}, Postgres writes/s at peak"
        f" {plan['postgres_writes_per_s']:.0f}, Redis for queues {plan['redis_queue_bytes'] / 2**20:.1f} MiB"
        f" at the largest backlog, objects/day {plan['objects_per_day']}"
        f" ({plan['bytes_per_day'] / 2**30:.1f} GiB)"
    )


def write_report(directory: Path, plan: dict[str, Any]) -> None:
    """replicas.png: replicas and backlog per factor over the day; plan.json: the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.capacity import summary_json

    directory.mkdir(parents=True, exist_ok=True)
    factors = plan["factors"]
    fig, axes = plt.subplots(len(factors), 1, figsize=(9, 2.6 * len(factors)), sharex=True)
    for ax, (factor, r) in zip(list(axes), factors.items(), strict=True):
        hours = [t / 3600 for t, _ in r.replicas]
        ax.step(hours, [n for _, n in r.replicas], where="post", label="replicas", color="tab:blue")
        ax.set_ylabel(f"{factor}\nreplicas")
        twin = ax.twinx()
        twin.plot(
            [t / 3600 for t, _ in r.backlog],
            [n for _, n in r.backlog],
            color="tab:orange",
            alpha=0.6,
            label="backlog",
        )
        twin.set_ylabel("jobs waiting")
        ax.set_title(
            f"{factor}: {r.replica_seconds / 3600:.1f} replica-hours, p99 {r.p99_s:.1f} s",
            fontsize=9,
        )
    axes[-1].set_xlabel("hour of the day")
    fig.suptitle(f"{plan['users']} users, policy {plan['policy']}")
    fig.tight_layout()
    fig.savefig(directory / "replicas.png", dpi=100)
    plt.close(fig)
    (directory / "plan.json").write_text(json.dumps(summary_json(plan), indent=2) + "\n")
