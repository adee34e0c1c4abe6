"""What the dashboard's JSON API returns: Postgres and Redis read once per refresh."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from core import factors as registry
from core import metrics as m
from core.jobs import operations
from core.settings import Settings

MAX_MINUTES = 24 * 60
POINTS = 60  # buckets per chart, whatever the window


def bucket_seconds(minutes: int) -> int:
    """A bucket width that gives about ``POINTS`` points over the window (at least 10 s)."""
    return max(10, (minutes * 60) // POINTS)


def queue_depths(client: redis.Redis, settings: Settings) -> dict[str, int]:
    """LLEN of every factor's queue and the webhook queue, now."""
    names = {f: settings.queues.score_queue(f) for f in registry.names()} | {
        "webhooks": settings.queues.webhooks
    }
    pipe = client.pipeline(transaction=False)
    for q in names.values():
        pipe.llen(q)
    return {name: int(n) for name, n in zip(names, pipe.execute(), strict=True)}


def queue_history(client: redis.Redis, minutes: int) -> list[dict[str, Any]]:
    """The relay's samples over the window, oldest first."""
    n = min(m.QUEUE_DEPTH_HISTORY_LEN, minutes * 60 // m.QUEUE_DEPTH_SAMPLE_EVERY_S + 1)
    since = time.time() - minutes * 60
    samples = [json.loads(raw) for raw in client.lrange(m.QUEUE_DEPTH_HISTORY_KEY, 0, n - 1)]
    return [s for s in reversed(samples) if s.get("t", 0) >= since]


def worker_pools(client: redis.Redis) -> list[dict[str, Any]]:
    """Live processes from their heartbeats (expired ones are gone), by role then host."""
    keys = list(client.scan_iter(match=m.WORKER_HEARTBEAT_PREFIX + "*", count=200))
    beats = [json.loads(raw) for raw in client.mget(keys) if raw] if keys else []
    return sorted(
        beats, key=lambda b: (str(b.get("role")), str(b.get("hostname")), int(b.get("pid", 0)))
    )


def _pipelines_dir(*parts: str) -> Path | None:
    """A folder of the installed ``pipelines`` package (read as files only)."""
    spec = importlib.util.find_spec("pipelines")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def _report(folder: Path) -> Any:
    """The folder's ``report.json``, or None when there is none or it does not parse."""
    if not (folder / "report.json").is_file():
        return None
    try:
        return json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def evaluation_dir(factor: str) -> Path | None:
    """``pipelines/<factor>/weights/eval`` of the installed project."""
    return _pipelines_dir(factor, "weights", "eval")


def evaluation(factor: str) -> dict[str, Any] | None:
    """The factor's committed evaluation report (EER per scorer), or None when there is none."""
    folder = evaluation_dir(factor)
    if folder is None or (report := _report(folder)) is None:
        return None
    scorers = {
        name: {
            k: s.get(k)
            for k in (
                "eer",
                "eer_sd",
                "pooled_eer",
                "fnmr_at_fmr_1pct",
                "fnmr_at_fmr_01pct",
                "subjects",
                "genuine",
                "impostor",
            )
        }
        for name, s in (report.get("scorers") or {}).items()
        if isinstance(s, dict)
    }
    return {"data": report.get("data"), "scorers": scorers, "det": (folder / "det.png").is_file()}


def trust_evaluation_dir() -> Path | None:
    """Where `tacit eval trust --report` wrote the committed trust evaluation."""
    return _pipelines_dir("evaluation", "reports", "trust")


TRUST_FIGURES = ("ania", "detected", "false_lockouts_per_1000", "anga")


def trust_evaluation() -> dict[str, Any] | None:
    """The stored trust evaluation (ANIA, false lockouts, fused and per factor), or None."""
    folder = trust_evaluation_dir()
    if folder is None or (report := _report(folder)) is None:
        return None

    def pick(figures: Any) -> dict[str, Any]:
        return {k: figures.get(k) for k in TRUST_FIGURES} if isinstance(figures, dict) else {}

    details = report.get("details") or {}
    setup = report.get("setup") or {}
    return {
        "users": report.get("users"),
        "sessions": report.get("sessions"),
        "uploads": report.get("uploads"),
        "fused": {
            **pick(report.get("fused")),
            "mean_detection_s": (details.get("fused") or {}).get("mean_detection_s"),
        },
        "factors": {f: pick(v) for f, v in (report.get("factors") or {}).items()},
        "trust_eer": report.get("trust_eer"),
        "data": setup.get("data"),
        "models": setup.get("models"),
        "plots": {name: (folder / f"{name}.png").is_file() for name in ("trust", "det")},
    }


def overview(
    pool: ConnectionPool, client: redis.Redis, settings: Settings, *, minutes: int
) -> dict[str, Any]:
    """Everything one dashboard refresh shows."""
    minutes = max(1, min(MAX_MINUTES, minutes))
    bucket = bucket_seconds(minutes)
    with pool.connection(timeout=5) as conn:
        load = operations.factor_load(conn)
        dead_counts = operations.dead_counts(conn)
        throughput = operations.throughput_series(conn, minutes=minutes, bucket_s=bucket)
        latency = operations.latency_series(conn, minutes=minutes, bucket_s=bucket)
        dead = operations.dead_jobs(conn, limit=50)
    depths = queue_depths(client, settings)
    factors = {
        f: {
            "depth": depths.get(f, 0),
            "in_flight": int(load[f]["in_flight"]),
            "per_s": load[f]["per_s"],
            "dead": dead_counts.get(f, 0),
        }
        for f in registry.names()
    }
    return {
        "now": time.time(),
        "minutes": minutes,
        "bucket_s": bucket,
        "factors": factors,
        "webhooks_depth": depths.get("webhooks", 0),
        "queue_history": queue_history(client, minutes),
        "throughput": throughput,
        "latency": latency,
        "workers": worker_pools(client),
        "dead_jobs": [
            {
                **j,
                "id": str(j["id"]),
                "tenant_id": str(j["tenant_id"]),
                "created_at": j["created_at"].isoformat(),
                "finished_at": j["finished_at"].isoformat() if j["finished_at"] else None,
            }
            for j in dead
        ],
        "evaluation": {f: evaluation(f) for f in registry.names()},
        "trust_evaluation": trust_evaluation(),
    }
