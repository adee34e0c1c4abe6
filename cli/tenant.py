"""`tacit tenant create NAME` / `tacit tenant list` / `tacit tenant key TENANT_ID`: operator commands."""

from __future__ import annotations

import argparse
import uuid


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tenant", help="manage tenants and their API keys")
    tsub = p.add_subparsers(dest="tenant_command", required=True)
    c = tsub.add_parser("create", help="create a tenant and print its first API key (shown once)")
    c.add_argument("name")
    c.set_defaults(func=run_create)
    tsub.add_parser("list", help="list tenants").set_defaults(func=run_list)
    k = tsub.add_parser("key", help="issue another API key for a tenant (shown once)")
    k.add_argument("tenant_id", type=uuid.UUID)
    k.add_argument("--label", default="")
    k.set_defaults(func=run_key)
    r = tsub.add_parser("revoke-key", help="revoke an API key")
    r.add_argument("tenant_id", type=uuid.UUID)
    r.add_argument("key_id", type=uuid.UUID)
    r.set_defaults(func=run_revoke)


def _conn():  # type: ignore[no-untyped-def]
    from core.db import connect
    from core.settings import get_settings

    return connect(get_settings().database_url)


def run_create(args: argparse.Namespace) -> int:
    from core.tenants.service import create_tenant

    with _conn() as conn:
        tenant, key = create_tenant(conn, name=args.name)
    print(f"tenant  {tenant.id}  {tenant.name}")
    print(f"api key {key.token}   (id {key.id}; shown once, store it now)")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from core.tenants.service import list_tenants

    with _conn() as conn:
        for t in list_tenants(conn):
            print(f"{t.id}  {t.name}  threshold={t.decision_threshold}")
    return 0


def run_key(args: argparse.Namespace) -> int:
    from core.tenants.service import create_api_key

    with _conn() as conn:
        key = create_api_key(conn, tenant_id=args.tenant_id, label=args.label)
    print(f"api key {key.token}   (id {key.id}; shown once)")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from cli.console import fail
    from core.errors import NotFound
    from core.tenants.service import revoke_api_key

    try:
        with _conn() as conn:
            revoke_api_key(conn, tenant_id=args.tenant_id, key_id=args.key_id)
    except NotFound as e:
        return fail(e.message)
    print("revoked")
    return 0
