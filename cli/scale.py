"""`tacit scale`: each factor pool's backlog, waiting time, load and the replicas KEDA would run.

Two rules, the ScaledObject's two triggers (``core/scaling.py``): by length,
``ceil(LLEN / listLength)``; by age, ``ceil(replicas * oldest_age / (objective / 2))``.
The recommendation is the larger, clamped to ``[minReplicaCount, maxReplicaCount]``, and
zero for a pool allowed to sleep while neither signal passes its activation threshold.
Current replicas are the pool processes whose heartbeat is in Redis.
Figures are each factor's own (``core.scaling.pool_scaling()``) with ``TACIT_SCALING__<FACTOR>__<FIELD>``
overrides, the same ones ``--emit-keda`` writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from core import factors as registry
from core.scaling import (
    PoolScaling,
    desired_replicas,
    replicas_by_age,
    replicas_by_length,
    replicas_by_rate,
)
from core.scaling import (
    pool_scaling as contract_scaling,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="queue depth, load and recommended replicas per factor pool")
    p.add_argument("--json", action="store_true", help='end with one JSON line: {"factors": {...}}')
    p.add_argument(
        "--emit-keda", type=Path, metavar="DIR", help="also write the KEDA ScaledObjects to DIR"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="read DATABASE_URL/REDIS_URL from a running `tacit up` in this directory",
    )
    p.set_defaults(func=run)


def pool_scaling(overrides: dict[str, dict[str, int | float]]) -> dict[str, PoolScaling]:
    """The contract's figures with the settings' per-factor overrides applied."""
    fields = {f.name: f.type for f in dataclasses.fields(PoolScaling)}
    out, defaults = {}, contract_scaling()
    unknown_factors = set(overrides) - set(defaults)
    if unknown_factors:
        raise ValueError(
            f"TACIT_SCALING__: no factor {', '.join(sorted(unknown_factors))} is installed"
        )
    for factor in registry.names():
        extra = overrides.get(factor, {})
        unknown = set(extra) - set(fields)
        if unknown:
            raise ValueError(
                f"TACIT_SCALING__{factor.upper()}: unknown field(s) {', '.join(sorted(unknown))}"
            )
        typed = {k: (int(v) if fields[k] == "int" else float(v)) for k, v in extra.items()}
        out[factor] = dataclasses.replace(defaults[factor], **typed)
    return out


def recommended_replicas(depth: int, scaling: PoolScaling) -> int:
    """KEDA's target from the redis list trigger alone (an AverageValue of ``list_length``)."""
    return desired_replicas(depth, 0.0, 0, scaling, use_age=False)


def current_replicas(client: Any) -> dict[str, int]:
    """Scoring pool processes per factor whose heartbeat has not expired."""
    from core.metrics import WORKER_HEARTBEAT_PREFIX

    counts = dict.fromkeys(registry.names(), 0)
    keys = list(client.scan_iter(f"{WORKER_HEARTBEAT_PREFIX}*", count=500))
    for raw in client.mget(keys) if keys else []:
        try:
            beat = json.loads(raw) if raw else {}
        except ValueError:
            continue
        if beat.get("role") == "score" and beat.get("factor") in counts:
            counts[beat["factor"]] += 1
    return counts


def measure(
    database_url: str, redis_url: str, queues: dict[str, str], figures: dict[str, PoolScaling]
) -> dict[str, dict[str, Any]]:
    """Per factor: depth, oldest_age_s, objective_s, in_flight, per_s (last minute),
    current_replicas, replicas_by_length, replicas_by_age, replicas_by_rate and
    recommended_replicas."""
    import redis

    from core.backlog import oldest_queued_age
    from core.db import connect
    from core.jobs.operations import factor_load

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    pipe = client.pipeline(transaction=False)
    for factor in registry.names():
        pipe.llen(queues[factor])
    depths = dict(zip(registry.names(), (int(n) for n in pipe.execute()), strict=True))
    current = current_replicas(client)
    with connect(database_url) as conn:
        load = factor_load(conn, window_s=60.0)
        ages = oldest_queued_age(conn, registry.names())
    return {
        f: {
            "depth": depths[f],
            "oldest_age_s": round(ages[f], 3),
            "objective_s": figures[f].latency_objective_s,
            "in_flight": int(load[f]["in_flight"]),
            "per_s": float(load[f]["per_s"]),
            "current_replicas": current[f],
            "replicas_by_length": replicas_by_length(depths[f], figures[f]),
            "replicas_by_age": replicas_by_age(ages[f], current[f], figures[f]),
            "replicas_by_rate": replicas_by_rate(float(load[f]["per_s"]), figures[f]),
            "recommended_replicas": desired_replicas(
                depths[f], ages[f], current[f], figures[f], jobs_per_s=float(load[f]["per_s"])
            ),
        }
        for f in registry.names()
    }


def run(args: argparse.Namespace) -> int:
    from cli.console import fail

    if args.data_dir is not None:
        from cli.stack import read_state

        state = read_state(args.data_dir.resolve())
        if state is None:
            return fail(f"no running `tacit up` in {args.data_dir}")
        os.environ.update(
            {k: v for k, v in state["env"].items() if k in ("DATABASE_URL", "REDIS_URL")}
        )
    from core.errors import Unavailable
    from core.settings import Settings

    settings = Settings()
    try:
        figures = pool_scaling(settings.scaling)
    except ValueError as e:
        return fail(str(e))
    queues = {f: settings.queues.score_queue(f) for f in registry.names()}
    if args.emit_keda is not None:
        from core.scaling import emit_keda, scaled_objects

        for path in emit_keda(args.emit_keda, scaled_objects(queues, scaling=figures)):
            print(f"wrote {path}")
    try:
        factors = measure(settings.database_url, settings.redis_url, queues, figures)
    except Unavailable as e:
        return fail(e.message)
    except Exception as e:  # noqa: BLE001 - Redis or Postgres unreachable: one line, no traceback
        return fail(f"could not read the queues: {e.__class__.__name__}: {e}")
    print(
        f"{'factor':<10} {'queue':<18} {'depth':>7} {'oldest s':>9} {'objective':>9} {'running':>8}"
        f" {'jobs/s':>8} {'by length':>9} {'by age':>7} {'replicas':>9}"
    )
    for f, row in factors.items():
        fig = figures[f]
        print(
            f"{f:<10} {queues[f]:<18} {row['depth']:>7} {row['oldest_age_s']:>9.1f}"
            f" {fig.latency_objective_s:>9.0f} {row['in_flight']:>8} {row['per_s']:>8.2f}"
            f" {row['replicas_by_length']:>9} {row['replicas_by_age']:>7}"
            f" {row['current_replicas']:>2} -> {row['recommended_replicas']}"
            f" ({fig.min_replicas}-{fig.max_replicas})"
        )
    if args.json:
        print(json.dumps({"factors": factors}))
    return 0
