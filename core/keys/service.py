"""Server encryption keys as the API sees them: public halves and statuses in ``server_keys``.

Private halves never reach this table: they live in the workers' key file
(``core.protocol.keyring.PrivateKeyring``). ``tacit keys`` writes the file first and then
syncs the public halves here, so phones never learn a key the workers cannot open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from core.db import DictConnection
from core.protocol.errors import ProtocolError
from core.protocol.keyring import KeyRecord, KeyStatus, public_key_entry


@dataclass(frozen=True)
class ServerKey:
    key_id: str
    public_key: bytes
    status: KeyStatus
    created_at: datetime

    def public_document(self) -> dict[str, str]:
        """This key's entry in ``GET /v1/keys``."""
        return public_key_entry(self.key_id, self.public_key, self.status, self.created_at)


def list_keys(conn: DictConnection) -> list[ServerKey]:
    """Every published key, current first, then newest first."""
    rows = conn.execute(
        "SELECT key_id, public_key, status, created_at FROM server_keys"
        " ORDER BY (status = 'current') DESC, (status = 'retired'), created_at DESC, key_id"
    ).fetchall()
    return [
        ServerKey(r["key_id"], bytes(r["public_key"]), r["status"], r["created_at"]) for r in rows
    ]


def check_usable(key_id: str, status: str | None) -> None:
    """An upload may name only a published (`status` not None), unretired key.

    Raises `unknown_key` or `retired_key`; the caller reads `status` from ``server_keys``
    in whatever statement it already runs (`core.batches.service.lookup`).
    """
    if status is None:
        raise ProtocolError("unknown_key", f"no published server key {key_id!r}")
    if status == "retired":
        raise ProtocolError("retired_key", f"server key {key_id!r} is retired")


def publish(conn: DictConnection, records: Iterable[KeyRecord]) -> None:
    """Make ``server_keys`` say what the key file says (public halves and statuses only).

    Keys missing from `records` are left as they are: a worker's file is the authority
    for the keys it holds, never a reason to forget one.
    """
    records = list(records)
    if any(r.status == "current" for r in records):
        # Demote first: the table allows one current key at a time.
        keep = [r.key_id for r in records if r.status == "current"]
        conn.execute(
            "UPDATE server_keys SET status = 'active' WHERE status = 'current' AND key_id <> ALL(%s)",
            (keep,),
        )
    for r in records:
        existing = conn.execute(
            "SELECT public_key FROM server_keys WHERE key_id = %s", (r.key_id,)
        ).fetchone()
        if existing is not None and bytes(existing["public_key"]) != r.public_bytes:
            raise ProtocolError(
                "keyring_bad_file", f"key {r.key_id} is published with another public key"
            )
        conn.execute(
            "INSERT INTO server_keys (key_id, public_key, status, created_at, retired_at)"
            " VALUES (%s, %s, %s, %s, CASE WHEN %s = 'retired' THEN now() END)"
            # retired is for good: a stale key file never brings a key back
            " ON CONFLICT (key_id) DO UPDATE SET status = CASE WHEN server_keys.status = 'retired'"
            " THEN 'retired' ELSE EXCLUDED.status END,"
            " retired_at = COALESCE(server_keys.retired_at, EXCLUDED.retired_at)",
            (r.key_id, r.public_bytes, r.status, r.created_at, r.status),
        )


def retire(conn: DictConnection, key_id: str) -> None:
    """Stop accepting uploads sealed to `key_id` (the current key cannot be retired)."""
    row = conn.execute("SELECT status FROM server_keys WHERE key_id = %s", (key_id,)).fetchone()
    if row is None:
        raise ProtocolError("unknown_key", f"no published server key {key_id!r}")
    if row["status"] == "current":
        raise ProtocolError("keyring_retire_current", "make another key current first")
    conn.execute(
        "UPDATE server_keys SET status = 'retired', retired_at = COALESCE(retired_at, now())"
        " WHERE key_id = %s",
        (key_id,),
    )
