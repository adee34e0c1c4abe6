"""Hostile and broken uploads: each gets its status and error code, and leaves no trace.

Every case runs against the real API over real Postgres, Redis and S3 (moto), then checks
that the tenant has no new batch, job or outbox row and no new object under raw/<tenant>/.
"""

from __future__ import annotations

import gzip
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import zstandard

from core.protocol import hpke
from core.protocol.envelope import EnvelopeHeader
from core.protocol.keyring import KeyRecord, public_bytes
from core.storage import make_store
from tests.api.conftest import TestPhone, enrol_phone, post_envelope

RETIRED_KEY_ID = "k-test-retired"


@dataclass
class World:
    api: object
    phone: TestPhone
    other: TestPhone  # a second device of the same tenant
    revoked: TestPhone
    settings: object


def _sealed(w: World, **header: object) -> bytes:
    """An envelope from w.phone with some header fields overridden, sealed to the current key."""
    now = int(time.time() * 1000)
    fields: dict[str, object] = {
        "device_id": w.phone.device_id,
        "batch_id": uuid.uuid4(),
        "factor": "keystroke",
        "purpose": "enrol",
        "capture_start_ms": now - 1000,
        "capture_end_ms": now,
        "key_id": w.phone.device.server_key.key_id,
    }
    fields.update(header)
    h = EnvelopeHeader(**fields)  # type: ignore[arg-type]
    return hpke.seal_envelope(
        w.phone.device.server_key.public_key, w.phone.device.tenant_id, h, b"frame"
    )


def _patched(w: World, offset: int, data: bytes) -> bytes:
    env = bytearray(w.phone.envelope()[1])
    env[offset : offset + len(data)] = data
    return bytes(env)


def _post(w: World, body: bytes, **kw: object):  # type: ignore[no-untyped-def]
    return post_envelope(w.api, w.phone, body, **kw)


def _post_raw(w: World, body: bytes, headers: dict[str, str] | list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return w.api.post("/v1/batches", content=body, headers=headers)  # type: ignore[attr-defined]


def _replayed(w: World):  # type: ignore[no-untyped-def]
    body = w.phone.envelope()[1]
    headers = w.phone.signed_headers(body)
    first = _post_raw(w, body, headers)
    assert first.status_code == 202
    return _post_raw(w, body, headers)


def _without(w: World, *names: str):  # type: ignore[no-untyped-def]
    body = w.phone.envelope()[1]
    headers = {k: v for k, v in w.phone.signed_headers(body).items() if k not in names}
    return _post_raw(w, body, headers)


def _with_header(w: World, name: str, value: str, body: bytes | None = None):  # type: ignore[no-untyped-def]
    body = body if body is not None else w.phone.envelope()[1]
    return _post_raw(w, body, {**w.phone.signed_headers(body), name: value})


def _encoded(w: World, encoding: str, body: bytes):  # type: ignore[no-untyped-def]
    return _post_raw(w, body, {**w.phone.signed_headers(body), "Content-Encoding": encoding})


def _changed_after_signing(w: World):  # type: ignore[no-untyped-def]
    body = w.phone.envelope()[1]
    headers = w.phone.signed_headers(body)
    return _post_raw(w, body[:-1] + bytes([body[-1] ^ 1]), headers)


def _signed_by(w: World, signer: TestPhone, device_id: str, body: bytes | None = None):  # type: ignore[no-untyped-def]
    body = body if body is not None else w.phone.envelope()[1]
    return _post_raw(w, body, signer.signed_headers(body, device_id=device_id))


def _duplicate_nonce(w: World):  # type: ignore[no-untyped-def]
    body = w.phone.envelope()[1]
    headers = list(w.phone.signed_headers(body).items()) + [("Tacit-Nonce", "A" * 22)]
    return _post_raw(w, body, headers)


BOMB = 9 * 1024 * 1024  # over the 8 MiB decoded limit, a few KiB compressed

# (case id, request, expected status, expected code)
CASES: list[tuple[str, Callable[[World], object], int, str]] = [
    # envelope structure
    (
        "truncated_in_ciphertext",
        lambda w: _post(w, w.phone.envelope()[1][:-5]),
        400,
        "envelope_truncated",
    ),
    (
        "truncated_in_header",
        lambda w: _post(w, w.phone.envelope()[1][:30]),
        400,
        "envelope_truncated",
    ),
    ("empty_body", lambda w: _post(w, b""), 400, "envelope_truncated"),
    ("bad_magic", lambda w: _post(w, _patched(w, 0, b"XENV")), 400, "envelope_bad_magic"),
    (
        "future_version",
        lambda w: _post(w, _patched(w, 4, b"\x02")),
        415,
        "envelope_unsupported_version",
    ),
    ("unknown_factor", lambda w: _post(w, _patched(w, 5, b"\x09")), 422, "envelope_unknown_factor"),
    ("bad_purpose", lambda w: _post(w, _patched(w, 6, b"\x07")), 422, "envelope_bad_purpose"),
    ("nil_batch_id", lambda w: _post(w, _patched(w, 7, bytes(16))), 422, "envelope_bad_batch_id"),
    (
        "uuid_v1_batch_id",
        lambda w: _post(w, _patched(w, 7, uuid.uuid1().bytes)),
        422,
        "envelope_bad_batch_id",
    ),
    (
        "capture_ends_before_start",
        lambda w: _post(
            w, _patched(w, 23, struct.pack("<QQ", 2_000_000_000_000, 1_000_000_000_000))
        ),
        422,
        "envelope_bad_capture_window",
    ),
    (
        "capture_beyond_calendar",
        lambda w: _post(w, _patched(w, 23, struct.pack("<QQ", 2**63, 2**63))),
        422,
        "envelope_bad_capture_window",
    ),
    (
        "bad_key_id_characters",
        lambda w: _post(w, _patched(w, 40 + 36 + 1, b"!")),
        422,
        "envelope_bad_key_id",
    ),
    (
        "short_enc",
        lambda w: _post(
            w,
            _patched(w, 40 + 36 + 1 + len(w.phone.device.server_key.key_id), struct.pack("<H", 31)),
        ),
        422,
        "envelope_bad_enc",
    ),
    ("ciphertext_shorter_than_tag", lambda w: _post(w, _short_ct(w)), 400, "envelope_bad_length"),
    (
        "trailing_bytes",
        lambda w: _post(w, w.phone.envelope()[1] + b"\0"),
        400,
        "envelope_trailing_bytes",
    ),
    (
        "ciphertext_length_over_limit",
        lambda w: _post(w, _huge_ct_claim(w)),
        413,
        "envelope_too_large",
    ),
    # server keys
    (
        "unknown_key_id",
        lambda w: _post(w, _sealed(w, key_id="k-2000-01-01-dead")),
        422,
        "unknown_key",
    ),
    ("retired_key_id", lambda w: _post(w, _sealed(w, key_id=RETIRED_KEY_ID)), 422, "retired_key"),
    # who sent it
    (
        "envelope_of_device_a_sent_by_b",
        lambda w: _signed_by(w, w.other, w.other.device_id),
        403,
        "envelope_device_mismatch",
    ),
    (
        "signed_by_another_key",
        lambda w: _signed_by(w, w.other, w.phone.device_id),
        401,
        "signature_invalid",
    ),
    (
        "unknown_device",
        lambda w: _signed_by(w, w.phone, str(uuid.uuid4())),
        404,
        "device_not_found",
    ),
    ("non_uuid_device_id", lambda w: _signed_by(w, w.phone, "phone-1"), 404, "device_not_found"),
    (
        "upper_case_device_id",
        lambda w: _signed_by(w, w.phone, w.phone.device_id.upper()),
        404,
        "device_not_found",
    ),
    (
        "revoked_device",
        lambda w: post_envelope(w.api, w.revoked, w.revoked.envelope()[1]),
        403,
        "device_revoked",
    ),
    # signatures
    ("replayed_request", _replayed, 401, "signature_replayed"),
    (
        "stale_timestamp",
        lambda w: _post(w, w.phone.envelope()[1], timestamp=int(time.time()) - 301),
        401,
        "signature_stale",
    ),
    (
        "future_timestamp",
        lambda w: _post(w, w.phone.envelope()[1], timestamp=int(time.time()) + 301),
        401,
        "signature_future",
    ),
    (
        "no_signature_headers",
        lambda w: _without(w, "Tacit-Device", "Tacit-Timestamp", "Tacit-Nonce", "Tacit-Signature"),
        401,
        "signature_missing_header",
    ),
    (
        "missing_signature",
        lambda w: _without(w, "Tacit-Signature"),
        401,
        "signature_missing_header",
    ),
    ("missing_nonce", lambda w: _without(w, "Tacit-Nonce"), 401, "signature_missing_header"),
    ("short_nonce", lambda w: _with_header(w, "Tacit-Nonce", "abc"), 401, "signature_bad_header"),
    (
        "timestamp_not_decimal",
        lambda w: _with_header(w, "Tacit-Timestamp", "+1700000000"),
        401,
        "signature_bad_header",
    ),
    (
        "signature_not_base64url",
        lambda w: _with_header(w, "Tacit-Signature", "!" * 86),
        401,
        "signature_bad_header",
    ),
    ("nonce_sent_twice", _duplicate_nonce, 401, "signature_bad_header"),
    ("body_changed_after_signing", _changed_after_signing, 401, "signature_invalid"),
    (
        "signed_for_another_path",
        lambda w: _post(w, w.phone.envelope()[1], target="/v1/other"),
        401,
        "signature_invalid",
    ),
    # body: type, encoding, size
    (
        "wrong_content_type",
        lambda w: _post(w, w.phone.envelope()[1], content_type="application/octet-stream"),
        415,
        "unsupported_media_type",
    ),
    (
        "content_type_with_parameter",
        lambda w: _post(
            w, w.phone.envelope()[1], content_type="application/vnd.tacit.envelope+v1; q=1"
        ),
        415,
        "unsupported_media_type",
    ),
    (
        "no_content_type",
        lambda w: _post(w, w.phone.envelope()[1], content_type=None),
        415,
        "unsupported_media_type",
    ),
    (
        "unsupported_encoding",
        lambda w: _encoded(w, "br", w.phone.envelope()[1]),
        415,
        "unsupported_content_encoding",
    ),
    (
        "gzip_that_is_not",
        lambda w: _encoded(w, "gzip", w.phone.envelope()[1]),
        400,
        "body_bad_encoding",
    ),
    (
        "truncated_gzip",
        lambda w: _encoded(w, "gzip", gzip.compress(w.phone.envelope()[1])[:-9]),
        400,
        "body_bad_encoding",
    ),
    ("oversized_body", lambda w: _post(w, b"\0" * (2 * 1024 * 1024 + 1)), 413, "body_too_large"),
    (
        "gzip_bomb",
        lambda w: _encoded(w, "gzip", gzip.compress(b"\0" * BOMB)),
        413,
        "body_too_large",
    ),
    (
        "zstd_bomb",
        lambda w: _encoded(w, "zstd", zstandard.ZstdCompressor().compress(b"\0" * BOMB)),
        413,
        "body_too_large",
    ),
]


def _short_ct(w: World) -> bytes:
    return w.phone.envelope()[1][: _ct_offset(w)] + struct.pack("<I", 8) + b"\0" * 8


def _ct_offset(w: World) -> int:
    """Offset of the ciphertext length field in w.phone's envelopes."""
    return 40 + len(w.phone.device_id) + 1 + len(w.phone.device.server_key.key_id) + 2 + 32


def _huge_ct_claim(w: World) -> bytes:
    env = w.phone.envelope()[1]
    at = _ct_offset(w)
    return env[:at] + struct.pack("<I", 2**32 - 1) + env[at + 4 :]


@pytest.fixture(scope="module")
def world(api, settings, db_module):  # type: ignore[no-untyped-def]
    from core.keys.service import publish
    from core.tenants.service import create_tenant

    t, key = create_tenant(db_module, name=f"hostile-{uuid.uuid4().hex[:6]}")
    tenant = {"id": t.id, "key": key.token, "headers": {"Authorization": f"Bearer {key.token}"}}
    revoked = enrol_phone(api, tenant, "mallory")
    assert (
        api.delete(f"/v1/devices/{revoked.device_id}", headers=tenant["headers"]).status_code == 200
    )
    from datetime import UTC, datetime

    with db_module.transaction():
        publish(
            db_module,
            [
                KeyRecord(
                    RETIRED_KEY_ID, "retired", datetime.now(UTC), public_bytes(b"\x01" * 32), None
                )
            ],
        )
    return World(api, enrol_phone(api, tenant), enrol_phone(api, tenant, "bob"), revoked, settings)


@pytest.fixture(scope="module")
def db_module(settings):  # type: ignore[no-untyped-def]
    from core.db import connect

    with connect(settings.database_url, autocommit=True) as conn:
        yield conn


def traces(w: World, db) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    """(batches, jobs, outbox rows, objects) of the world's tenant."""
    tid = w.phone.tenant["id"]
    row = db.execute(
        "SELECT (SELECT count(*) FROM batches WHERE tenant_id = %(t)s) AS b,"
        " (SELECT count(*) FROM jobs WHERE tenant_id = %(t)s) AS j,"
        " (SELECT count(*) FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE j.tenant_id = %(t)s) AS o",
        {"t": tid},
    ).fetchone()
    objects = len(make_store(w.settings.storage).list(f"raw/{tid}/"))  # type: ignore[attr-defined]
    return row["b"], row["j"], row["o"], objects


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("make", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused_upload_leaves_no_trace(world, db_module, make, status, code):  # type: ignore[no-untyped-def]
    # given the tenant's rows and objects before (a replay's first, genuine upload counts as before)
    before = traces(world, db_module)
    legit_before = 1 if make is _replayed else 0
    # when the bad request is sent
    r = make(world)
    # then its status and code, a JSON error body, and nothing new stored
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert set(r.json()["error"]) == {"code", "message"}
    assert traces(world, db_module) == tuple(n + legit_before for n in before)
