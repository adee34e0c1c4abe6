"""`tacit migrate`: apply the database migrations (a step of its own, never on start-up)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument(
        "--create-database", action="store_true", help="create the database first if missing"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cli.console import fail
    from core.db import ensure_database, migrate
    from core.errors import Unavailable
    from core.settings import get_settings

    url = get_settings().database_url
    try:
        if args.create_database:
            ensure_database(url)
        applied = migrate(url)
    except (Unavailable, OSError) as e:
        return fail(f"cannot reach the database: {e}")
    except Exception as e:  # noqa: BLE001 - psycopg errors carry the useful text
        return fail(f"migration failed: {e}")
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0
