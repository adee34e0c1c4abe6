"""`tacit scale`: each factor pool's backlog, load and the replicas KEDA would run.

The recommendation is KEDA's own rule for its ``redis`` trigger (``core/scaling.py``):
``ceil(LLEN / listLength)`` replicas, clamped to ``[minReplicaCount, maxReplicaCount]``,
and zero for a pool allowed to sleep whose backlog is under ``activationListLength``.
Figures are ``core.scaling.POOL_SCALING`` with ``TACIT_SCALING__<FACTOR>__<FIELD>``
overrides, the same ones ``--emit-keda`` writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from core.queues import FACTORS
from core.scaling import POOL_SCALING, PoolScaling


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


def pool_scaling(overrides: dict[str, dict[str, int]]) -> dict[str, PoolScaling]:
    """The contract's figures with the settings' per-factor overrides applied."""
    fields = {f.name for f in dataclasses.fields(PoolScaling)}
    out = {}
    for factor in FACTORS:
        extra = overrides.get(factor, {})
        unknown = set(extra) - fields
        if unknown:
            raise ValueError(
                f"TACIT_SCALING__{factor.upper()}: unknown field(s) {', '.join(sorted(unknown))}"
            )
        out[factor] = dataclasses.replace(POOL_SCALING[factor], **extra)
    return out


def recommended_replicas(depth: int, scaling: PoolScaling) -> int:
    """KEDA's target for a redis list trigger with an AverageValue of ``list_length``."""
    if scaling.min_replicas == 0 and depth < scaling.activation_list_length:
        return 0
    wanted = math.ceil(depth / scaling.list_length) if depth > 0 else 0
    return max(scaling.min_replicas, min(scaling.max_replicas, wanted))


def measure(
    database_url: str, redis_url: str, queues: dict[str, str], figures: dict[str, PoolScaling]
) -> dict[str, dict[str, Any]]:
    """Per factor: depth, in_flight, per_s (last minute) and recommended_replicas."""
    import redis

    from core.db import connect
    from core.jobs.operations import factor_load

    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    pipe = client.pipeline(transaction=False)
    for factor in FACTORS:
        pipe.llen(queues[factor])
    depths = dict(zip(FACTORS, (int(n) for n in pipe.execute()), strict=True))
    with connect(database_url) as conn:
        load = factor_load(conn, window_s=60.0)
    return {
        f: {
            "depth": depths[f],
            "in_flight": int(load[f]["in_flight"]),
            "per_s": float(load[f]["per_s"]),
            "recommended_replicas": recommended_replicas(depths[f], figures[f]),
        }
        for f in FACTORS
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
    queues = {f: settings.queues.score_queue(f) for f in FACTORS}
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
        f"{'factor':<10} {'queue':<18} {'depth':>7} {'running':>8} {'jobs/s':>8} {'target/replica':>15} {'replicas':>9}"
    )
    for f, row in factors.items():
        fig = figures[f]
        print(
            f"{f:<10} {queues[f]:<18} {row['depth']:>7} {row['in_flight']:>8} {row['per_s']:>8.2f}"
            f" {fig.list_length:>15} {row['recommended_replicas']:>4} ({fig.min_replicas}-{fig.max_replicas})"
        )
    if args.json:
        print(json.dumps({"factors": factors}))
    return 0
