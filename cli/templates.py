"""`tacit templates rebuild [--factor F] [--user U]`: re-embed stored enrolment batches after a model upgrade.

The work runs in the factors' worker pools (they hold the models), never here: this
command records a re-embedding owed for each (user, factor) with enrolment samples, hands
them to the pools, and shows their progress. Interrupted, it can be run again: samples
already re-embedded are not embedded twice, and a template already current is left alone.
"""

from __future__ import annotations

import argparse
import time

from core import factors as registry


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("templates", help="user templates: rebuild after a model upgrade")
    tsub = p.add_subparsers(dest="templates_command", required=True)
    r = tsub.add_parser(
        "rebuild", help="re-embed stored enrolment batches with the current models (in the pools)"
    )
    r.add_argument("--factor", choices=registry.names(), default=None)
    r.add_argument(
        "--user", default=None, help="a user's external id (with --tenant, only that tenant's)"
    )
    r.add_argument("--tenant", default=None, help="tenant id")
    r.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for the pools (default 3600)"
    )
    r.add_argument("--no-wait", action="store_true", help="queue the work and return")
    r.set_defaults(func=run_rebuild)


def run_rebuild(args: argparse.Namespace) -> int:
    import uuid

    from cli.console import Progress, fail
    from core.db import connect, make_pool
    from core.enrolment.templates import rebuilds_left, request_reembedding
    from core.errors import Unavailable
    from core.publisher import JobPublisher
    from core.settings import get_settings
    from workers.relay import publish_template_rebuilds

    settings = get_settings()
    try:
        tenant = uuid.UUID(args.tenant) if args.tenant else None
    except ValueError:
        return fail(f"--tenant {args.tenant!r} is not a tenant id")
    try:
        with connect(settings.database_url) as conn:
            pairs = request_reembedding(
                conn, factor=args.factor, user_external_id=args.user, tenant_id=tenant
            )
    except Unavailable as e:
        return fail(f"cannot reach the database: {e.message}")
    if not pairs:
        print("no enrolment samples match: nothing to rebuild")
        return 0
    print(f"re-embedding {len(pairs)} template(s) in the worker pools")
    pool = make_pool(settings.database_url, min_size=1, max_size=1, name="templates-rebuild")
    pool.open(wait=False)
    publisher = JobPublisher(settings)
    try:
        publish_template_rebuilds(pool, publisher, settings)  # the relay would too, within a poll
        if args.no_wait:
            return 0
        bar = Progress("rebuild", len(pairs))
        deadline = time.monotonic() + args.timeout
        while True:
            with pool.connection() as conn:
                left = rebuilds_left(conn, pairs)
            bar.update(len(pairs) - left)
            if left == 0:
                bar.finish()
                print(f"rebuilt {len(pairs)} template(s)")
                return 0
            if time.monotonic() > deadline:
                bar.finish(f"{left} left")
                return fail(
                    f"{left} template(s) not rebuilt within {args.timeout:.0f}s: are the pools of"
                    f" {', '.join(sorted({f for _, f in pairs}))} running? Run the command again to resume."
                )
            publish_template_rebuilds(pool, publisher, settings)
            time.sleep(1.0)
    except Unavailable as e:
        return fail(f"lost the database: {e.message}; run the command again to resume")
    finally:
        pool.close()
