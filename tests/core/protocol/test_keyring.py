from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.protocol import hpke
from core.protocol.envelope import EnvelopeHeader, parse_envelope
from core.protocol.errors import ProtocolError
from core.protocol.keyring import PrivateKeyring, b64url_decode, generate_key, public_bytes


def test_generated_key_has_short_dated_id_and_matching_public_key() -> None:
    key_id, priv, pub = generate_key(datetime(2026, 11, 27, tzinfo=UTC))
    assert re.fullmatch(r"k-2026-11-27-[0-9a-f]{4}", key_id)
    assert len(priv) == 32 and public_bytes(priv) == pub


def test_rotation_keeps_old_key_for_in_flight_batches(
    tmp_path: Path, header: EnvelopeHeader
) -> None:
    # given a ring with one key and a batch sealed to it
    path = tmp_path / "keys.json"
    ring = PrivateKeyring()
    old_id, old_priv, old_pub = generate_key()
    ring.add(old_id, old_priv)
    h = replace(header, key_id=old_id)
    env = parse_envelope(hpke.seal_envelope(old_pub, "ten_acme", h, b"frame"))
    # when a new key becomes current and the ring is written and loaded again
    new_id, new_priv, _ = generate_key()
    ring.add(new_id, new_priv)
    ring.write(path)
    loaded = PrivateKeyring.load(path)
    # then the new key is current, the old one active and still opens the batch
    assert loaded.current_key_id == new_id
    assert {r.key_id: r.status for r in loaded.records} == {old_id: "active", new_id: "current"}
    assert hpke.open_envelope(loaded.private_key(old_id), "ten_acme", env) == b"frame"
    # and the file is private to its owner
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_retired_key_is_wiped_and_named_as_retired(tmp_path: Path) -> None:
    # given a ring where the older key is retired and written out
    path = tmp_path / "keys.json"
    ring = PrivateKeyring()
    old_id, old_priv, _ = generate_key()
    ring.add(old_id, old_priv)
    new_id, new_priv, _ = generate_key()
    ring.add(new_id, new_priv)
    ring.retire(old_id)
    ring.write(path)
    # then the file no longer holds its private key
    doc = json.loads(path.read_text())
    old = next(k for k in doc["keys"] if k["key_id"] == old_id)
    assert "private_key" not in old and old["status"] == "retired"
    # and asking for it gives retired_key, an unknown id gives unknown_key
    loaded = PrivateKeyring.load(path)
    for key_id, code in ((old_id, "retired_key"), ("k-nope", "unknown_key")):
        with pytest.raises(ProtocolError) as e:
            loaded.private_key(key_id)
        assert e.value.code == code


def test_current_key_cannot_be_retired() -> None:
    ring = PrivateKeyring()
    key_id, priv, _ = generate_key()
    ring.add(key_id, priv)
    with pytest.raises(ProtocolError) as e:
        ring.retire(key_id)
    assert e.value.code == "keyring_retire_current"


def test_public_document_has_the_published_shape() -> None:
    ring = PrivateKeyring()
    key_id, priv, pub = generate_key()
    ring.add(key_id, priv, created_at=datetime(2026, 11, 27, 10, 0, tzinfo=UTC))
    doc = ring.public_document()
    assert doc == {
        "keys": [
            {
                "key_id": key_id,
                "public_key": doc["keys"][0]["public_key"],
                "status": "current",
                "created_at": "2026-11-27T10:00:00Z",
            }
        ]
    }
    assert b64url_decode(doc["keys"][0]["public_key"]) == pub
    assert "private" not in json.dumps(doc)


def test_group_readable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = PrivateKeyring()
    key_id, priv, _ = generate_key()
    ring.add(key_id, priv)
    ring.write(path)
    os.chmod(path, 0o640)
    with pytest.raises(ProtocolError) as e:
        PrivateKeyring.load(path)
    assert e.value.code == "keyring_insecure_permissions"
    assert PrivateKeyring.load(path, strict_permissions=False).current_key_id == key_id


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"version": 2, "keys": []}',
        '{"version": 1, "keys": [1]}',
        '{"version": 1, "keys": [{"key_id": "k-1"}]}',
    ],
)
def test_malformed_file_is_keyring_bad_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(text)
    os.chmod(path, 0o600)
    with pytest.raises(ProtocolError) as e:
        PrivateKeyring.load(path)
    assert e.value.code == "keyring_bad_file"


def test_mismatched_private_key_is_refused(tmp_path: Path) -> None:
    ring = PrivateKeyring()
    key_id, priv, _ = generate_key()
    ring.add(key_id, priv)
    path = tmp_path / "keys.json"
    ring.write(path)
    doc = json.loads(path.read_text())
    doc["keys"][0]["public_key"] = doc["keys"][0]["private_key"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ProtocolError) as e:
        PrivateKeyring.load(path)
    assert e.value.code == "keyring_bad_file"


def test_missing_file_is_keyring_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError) as e:
        PrivateKeyring.load(tmp_path / "absent.json")
    assert e.value.code == "keyring_unreadable"
