"""Server encryption keys: X25519 key pairs with key ids and a lifecycle.

Private keys live only in a JSON file read by worker processes (mode 0600).
Public keys are published by the API (from Postgres) at ``GET /v1/keys``.

Lifecycle: ``current`` (phones encrypt new batches to it; exactly one),
``active`` (older, still decrypts in-flight batches), ``retired`` (private key
wiped from the file; batches naming it fail with ``retired_key``).

File shape::

    {"version": 1, "keys": [{"key_id": "k-2026-11-27-ab12", "status": "current",
      "created_at": "2026-11-27T10:00:00Z", "public_key": "<base64url>",
      "private_key": "<base64url>"}]}
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from core.protocol.envelope import KEY_ID_RE
from core.protocol.errors import ProtocolError

KeyStatus = Literal["current", "active", "retired"]
KEY_STATUSES: tuple[KeyStatus, ...] = ("current", "active", "retired")
FILE_VERSION = 1


def b64url(data: bytes) -> str:
    """Base64url without padding, the encoding of every key on the wire."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of `b64url`; raises ValueError on anything else."""
    if not isinstance(text, str) or "=" in text or not text.isascii():
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:  # rejects stray characters and non-canonical tails
        raise ValueError("not canonical base64url")
    return raw


def public_bytes(private_bytes: bytes) -> bytes:
    """Raw 32-byte X25519 public key for a raw 32-byte private key."""
    sk = x25519.X25519PrivateKey.from_private_bytes(private_bytes)
    return sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_key_id(now: datetime | None = None) -> str:
    """A short, sortable key id: ``k-YYYY-MM-DD-xxxx``."""
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    return f"k-{day}-{secrets.token_hex(2)}"


def generate_key(now: datetime | None = None) -> tuple[str, bytes, bytes]:
    """A fresh X25519 key pair: (key_id, private_bytes, public_bytes), raw 32 bytes each."""
    sk = x25519.X25519PrivateKey.generate()
    priv = sk.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return new_key_id(now), priv, public_bytes(priv)


@dataclass(frozen=True)
class KeyRecord:
    """One key of the ring; `private_bytes` is None once retired."""

    key_id: str
    status: KeyStatus
    created_at: datetime
    public_bytes: bytes
    private_bytes: bytes | None

    def public_document(self) -> dict[str, str]:
        """This key's entry in ``GET /v1/keys``."""
        return public_key_entry(self.key_id, self.public_bytes, self.status, self.created_at)


def public_key_entry(
    key_id: str, public_key: bytes, status: KeyStatus, created_at: datetime
) -> dict[str, str]:
    """One entry of ``GET /v1/keys`` (the API builds it from its Postgres rows)."""
    return {
        "key_id": key_id,
        "public_key": b64url(public_key),
        "status": status,
        "created_at": created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _bad(message: str) -> ProtocolError:
    return ProtocolError("keyring_bad_file", message)


def _parse_record(item: Any) -> KeyRecord:
    if not isinstance(item, dict):
        raise _bad("each key must be an object")
    try:
        key_id, status = item["key_id"], item["status"]
        created_at = datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00"))
        pub = b64url_decode(item["public_key"])
        priv_text = item.get("private_key")
        priv = None if priv_text is None else b64url_decode(priv_text)
    except (KeyError, ValueError, TypeError) as e:
        raise _bad(f"malformed key entry: {e}") from None
    if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
        raise _bad(f"bad key id {key_id!r}")
    if status not in KEY_STATUSES:
        raise _bad(f"key {key_id}: bad status {status!r}")
    if created_at.tzinfo is None:
        raise _bad(f"key {key_id}: created_at needs a timezone")
    if (priv is None) != (status == "retired"):
        raise _bad(f"key {key_id}: only retired keys lack a private key")
    if priv is not None and (len(priv) != 32 or public_bytes(priv) != pub):
        raise _bad(f"key {key_id}: private key does not match its public key")
    return KeyRecord(key_id, status, created_at, pub, priv)


def check_permissions(path: Path, st: os.stat_result) -> None:
    """The key file must be readable by this process alone: mode 0600 or 0400, or a
    root-owned file readable by this (non-root) process's own group and nobody else,
    mode 0440 or 0640 as a Kubernetes secret volume with ``fsGroup`` mounts it."""
    mode = stat.S_IMODE(st.st_mode)
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return
    own_group = st.st_gid == os.getegid() or st.st_gid in os.getgroups()
    secret_volume = (
        st.st_uid == 0
        and os.geteuid() != 0
        and own_group
        and not mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP)
    )
    if not secret_volume:
        raise ProtocolError(
            "keyring_insecure_permissions",
            f"{path} must be mode 0600 or 0400 (or 0440, owned by root, in this process's group)",
        )


class PrivateKeyring:
    """The worker-side ring of server private keys, loaded from (and written to) one file."""

    def __init__(self, records: list[KeyRecord] | None = None) -> None:
        self._records: dict[str, KeyRecord] = {}
        for r in records or []:
            if r.key_id in self._records:
                raise _bad(f"duplicate key id {r.key_id}")
            self._records[r.key_id] = r
        currents = [r for r in self._records.values() if r.status == "current"]
        if len(currents) > 1:
            raise _bad("more than one current key")

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, strict_permissions: bool = True
    ) -> PrivateKeyring:
        """Read the key file; refuses one others could read unless told not to (see
        `check_permissions`)."""
        p = Path(path)
        try:
            st = p.stat()
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ProtocolError("keyring_unreadable", f"{p}: {e.strerror}") from None
        if strict_permissions:
            check_permissions(p, st)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise _bad(f"not JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
            raise _bad(f"expected an object with version {FILE_VERSION}")
        keys = doc.get("keys")
        if not isinstance(keys, list):
            raise _bad("keys must be a list")
        return cls([_parse_record(k) for k in keys])

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the ring atomically with mode 0600 (temp file in the same folder, then rename)."""
        p = Path(path)
        doc = {
            "version": FILE_VERSION,
            "keys": [
                {
                    **r.public_document(),
                    **({} if r.private_bytes is None else {"private_key": b64url(r.private_bytes)}),
                }
                for r in self._records.values()
            ],
        }
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @property
    def records(self) -> list[KeyRecord]:
        return list(self._records.values())

    @property
    def current_key_id(self) -> str | None:
        return next((r.key_id for r in self._records.values() if r.status == "current"), None)

    def private_key(self, key_id: str) -> x25519.X25519PrivateKey:
        """The private key to open a batch sealed to `key_id`; unknown_key / retired_key otherwise."""
        r = self._records.get(key_id)
        if r is None:
            raise ProtocolError("unknown_key", f"no server key {key_id!r}")
        if r.private_bytes is None:
            raise ProtocolError("retired_key", f"server key {key_id!r} is retired")
        return x25519.X25519PrivateKey.from_private_bytes(r.private_bytes)

    def add(
        self,
        key_id: str,
        private_bytes: bytes,
        *,
        make_current: bool = True,
        created_at: datetime | None = None,
    ) -> KeyRecord:
        """Add a key; by default it becomes current and the old current key becomes active."""
        if not KEY_ID_RE.fullmatch(key_id):
            raise _bad(f"bad key id {key_id!r}")
        if key_id in self._records:
            raise _bad(f"duplicate key id {key_id}")
        if make_current:
            self._records = {
                k: replace(r, status="active") if r.status == "current" else r
                for k, r in self._records.items()
            }
        record = KeyRecord(
            key_id=key_id,
            status="current" if make_current else "active",
            created_at=created_at or datetime.now(UTC).replace(microsecond=0),
            public_bytes=public_bytes(private_bytes),
            private_bytes=bytes(private_bytes),
        )
        self._records[key_id] = record
        return record

    def retire(self, key_id: str) -> KeyRecord:
        """Retire a key: wipe its private bytes, keep the record so errors say retired_key."""
        r = self._records.get(key_id)
        if r is None:
            raise ProtocolError("unknown_key", f"no server key {key_id!r}")
        if r.status == "current":
            raise ProtocolError("keyring_retire_current", "make another key current first")
        retired = replace(r, status="retired", private_bytes=None)
        self._records[key_id] = retired
        return retired

    def public_document(self) -> dict[str, list[dict[str, str]]]:
        """The ``GET /v1/keys`` body for this ring (the API serves the same shape from Postgres)."""
        return {"keys": [r.public_document() for r in self._records.values()]}
