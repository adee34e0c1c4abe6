"""`tacit jobs requeue --dead [--factor F]`: give dead jobs another set of attempts."""

from __future__ import annotations

import argparse

from core import factors as registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jobs", help="operator actions on jobs")
    jsub = p.add_subparsers(dest="jobs_command", required=True)
    r = jsub.add_parser("requeue", help="requeue dead jobs (the relay publishes them)")
    r.add_argument("--dead", action="store_true", required=True, help="requeue jobs that are dead")
    r.add_argument("--factor", choices=registry.names(), default=None)
    r.add_argument("--limit", type=int, default=10_000)
    r.set_defaults(func=run_requeue)


def run_requeue(args: argparse.Namespace) -> int:
    from cli.console import fail
    from core.db import connect
    from core.errors import Unavailable
    from core.jobs.endings import requeue_dead
    from core.settings import get_settings

    settings = get_settings()
    try:
        with connect(settings.database_url) as conn:
            sql, params = "SELECT id FROM jobs WHERE status = 'dead'", []
            if args.factor:
                sql += " AND factor = %s"
                params.append(args.factor)
            ids = [
                r["id"]
                for r in conn.execute(sql + " ORDER BY finished_at LIMIT %s", [*params, args.limit])
            ]
            for job_id in ids:
                requeue_dead(conn, job_id, queue_for=settings.queues.score_queue)
    except Unavailable as e:
        return fail(f"cannot reach the database: {e.message}")
    print(
        f"requeued {len(ids)} dead job(s){' of ' + args.factor if args.factor else ''}; the relay publishes them"
    )
    return 0
