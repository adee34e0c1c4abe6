"""`tacit keys rotate | retire ID | list`: the server's HPKE encryption keys.

The private keyring file (TACIT_CRYPTO__PRIVATE_KEYS_FILE, or --file) belongs to the
workers; Postgres holds only the public halves the API publishes at ``GET /v1/keys``.
Rotate writes the file first and publishes after, so phones never seal to a key the
workers lack; retire stops the API accepting the key first and wipes it from the file
after, so no batch is accepted that can no longer be opened.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="rotate, retire and list the server's encryption keys")
    p.add_argument(
        "--file",
        type=Path,
        default=None,
        help="private key file (default: TACIT_CRYPTO__PRIVATE_KEYS_FILE)",
    )
    ksub = p.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("rotate", help="add a new current key; the old one stays active").set_defaults(
        func=run_rotate
    )
    r = ksub.add_parser("retire", help="retire a non-current key: batches sealed to it are refused")
    r.add_argument("key_id")
    r.set_defaults(func=run_retire)
    ksub.add_parser("list", help="the keys in the file and their published status").set_defaults(
        func=run_list
    )


def key_file(args: argparse.Namespace) -> Path | None:
    from core.settings import get_settings

    return args.file or get_settings().crypto.private_keys_file


def rotate(path: Path, database_url: str | None = None) -> str:
    """Add a new current key to the file (creating it, mode 0600) and publish the ring; returns its id."""
    from core.protocol.keyring import PrivateKeyring, generate_key

    ring = PrivateKeyring.load(path) if path.exists() else PrivateKeyring()
    key_id, private, _ = generate_key()
    ring.add(key_id, private)
    path.parent.mkdir(parents=True, exist_ok=True)
    ring.write(path)
    publish(ring, database_url)
    return key_id


def publish(ring, database_url: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Sync the ring's public halves and statuses into ``server_keys``."""
    from core.db import connect
    from core.keys import service
    from core.settings import get_settings

    with connect(database_url or get_settings().database_url) as conn, conn.transaction():
        service.publish(conn, ring.records)


def retire(path: Path, key_id: str, database_url: str | None = None) -> None:
    """Refuse uploads sealed to `key_id`, then wipe its private key from the file."""
    from core.db import connect
    from core.keys import service
    from core.protocol.keyring import PrivateKeyring
    from core.settings import get_settings

    ring = PrivateKeyring.load(path)
    ring.retire(key_id)  # checks first (unknown, current) before anything changes
    with connect(database_url or get_settings().database_url) as conn, conn.transaction():
        service.retire(conn, key_id)
    ring.write(path)


def _change_keys(args: argparse.Namespace, change: Callable[[Path], str]) -> int:
    """Apply `change` to the key file and print the line it returns; any refusal in one line."""
    from cli.console import fail
    from core.errors import DomainError
    from core.protocol.errors import ProtocolError

    path = key_file(args)
    if path is None:
        return fail("no key file: set TACIT_CRYPTO__PRIVATE_KEYS_FILE or pass --file")
    try:
        done = change(path)
    except (ProtocolError, DomainError) as e:
        return fail(f"{e.code}: {e.message}")
    print(done)
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    def change(path: Path) -> str:
        key_id = rotate(path)
        return f"current key {key_id}   (file {path}; older keys stay active until retired)"

    return _change_keys(args, change)


def run_retire(args: argparse.Namespace) -> int:
    def change(path: Path) -> str:
        retire(path, args.key_id)
        return f"retired {args.key_id}"

    return _change_keys(args, change)


def run_list(args: argparse.Namespace) -> int:
    from cli.console import fail
    from core.db import connect
    from core.errors import DomainError
    from core.keys.service import list_keys
    from core.protocol.errors import ProtocolError
    from core.protocol.keyring import PrivateKeyring
    from core.settings import get_settings

    path = key_file(args)
    try:
        in_file = {r.key_id: r for r in PrivateKeyring.load(path).records} if path else {}
        with connect(get_settings().database_url) as conn:
            published = {k.key_id: k for k in list_keys(conn)}
    except (ProtocolError, DomainError) as e:
        return fail(f"{e.code}: {e.message}")
    print(f"{'key id':<22} {'published':<10} {'file':<10} created")
    for key_id in sorted(set(in_file) | set(published)):
        pub, rec = published.get(key_id), in_file.get(key_id)
        created = (pub or rec).created_at  # type: ignore[union-attr]
        held = "-" if rec is None else ("private" if rec.private_bytes else "wiped")
        print(f"{key_id:<22} {pub.status if pub else '-':<10} {held:<10} {created:%Y-%m-%d %H:%M}")
    return 0
