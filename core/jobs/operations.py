"""What operators read across tenants: backlog, throughput, latency, dead jobs.

Used by the operator dashboard (``/ops``), ``tacit scale`` and the API's scrape-time
metrics. Never reached from a tenant-facing route: nothing here is scoped by tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from core import factors as registry


def dead_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Dead jobs per factor (every factor present, zero when none)."""
    rows = conn.execute(
        "SELECT factor, count(*) AS n FROM jobs WHERE status = 'dead' GROUP BY factor"
    ).fetchall()
    counts = dict.fromkeys(registry.names(), 0)
    counts.update({r["factor"]: int(r["n"]) for r in rows})
    return counts


def factor_load(
    conn: psycopg.Connection[Any], *, window_s: float = 60.0
) -> dict[str, dict[str, float]]:
    """Per factor: jobs running now, and jobs finished per second over the last ``window_s``."""
    running = conn.execute(
        "SELECT factor, count(*) AS n FROM jobs WHERE status = 'running' GROUP BY factor"
    ).fetchall()
    finished = conn.execute(
        "SELECT factor, count(*) AS n FROM jobs"
        " WHERE finished_at >= now() - make_interval(secs => %s) GROUP BY factor",
        (window_s,),
    ).fetchall()
    load = {f: {"in_flight": 0.0, "per_s": 0.0} for f in registry.names()}
    for r in running:
        load.setdefault(r["factor"], {"in_flight": 0.0, "per_s": 0.0})["in_flight"] = int(r["n"])
    for r in finished:
        entry = load.setdefault(r["factor"], {"in_flight": 0.0, "per_s": 0.0})
        entry["per_s"] = round(int(r["n"]) / window_s, 4)
    return load


def throughput_series(
    conn: psycopg.Connection[Any], *, minutes: int, bucket_s: int
) -> dict[str, list[list[float]]]:
    """Per factor, ``[bucket start (epoch s), jobs finished per second]`` over the last minutes."""
    return _bucketed(
        conn,
        "count(*) AS n",
        lambda r: [round(int(r["n"]) / bucket_s, 4)],
        minutes=minutes,
        bucket_s=bucket_s,
    )


def latency_series(
    conn: psycopg.Connection[Any], *, minutes: int, bucket_s: int
) -> dict[str, list[list[float]]]:
    """Per factor, ``[bucket start, p50, p95, p99]`` of upload-to-score seconds of done jobs."""
    return _bucketed(
        conn,
        "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP"
        " (ORDER BY extract(epoch FROM finished_at - created_at)) AS p",
        lambda r: [round(float(v), 4) for v in r["p"]],
        minutes=minutes,
        bucket_s=bucket_s,
        where="status = 'done'",
    )


def _bucketed(
    conn: psycopg.Connection[Any],
    aggregate: str,
    values: Callable[[dict[str, Any]], list[float]],
    *,
    minutes: int,
    bucket_s: int,
    where: str = "TRUE",
) -> dict[str, list[list[float]]]:
    """Per factor, ``[bucket start, *values(row)]`` of the jobs finished in the last minutes,
    grouped in buckets of ``bucket_s``; every factor present, empty when it has none."""
    rows = conn.execute(
        f"SELECT factor, floor(extract(epoch FROM finished_at) / %(b)s) * %(b)s AS t, {aggregate}"
        f" FROM jobs WHERE {where} AND finished_at >= now() - make_interval(mins => %(m)s)"
        " GROUP BY 1, 2 ORDER BY 2",
        {"b": bucket_s, "m": minutes},
    ).fetchall()
    series: dict[str, list[list[float]]] = {f: [] for f in registry.names()}
    for r in rows:
        series.setdefault(r["factor"], []).append([float(r["t"]), *values(r)])
    return series


def dead_jobs(conn: psycopg.Connection[Any], *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent dead jobs with their reasons (no tenant data beyond ids)."""
    rows = conn.execute(
        "SELECT id, tenant_id, factor, purpose, attempts, error_code, error_message,"
        " created_at, finished_at FROM jobs WHERE status = 'dead'"
        " ORDER BY finished_at DESC NULLS LAST, id LIMIT %s",
        (limit,),
    ).fetchall()
    return [dict(r) for r in rows]
