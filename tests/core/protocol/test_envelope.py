from __future__ import annotations

import struct
import uuid
from dataclasses import replace

import pytest

from core.protocol.envelope import (
    MAGIC,
    EnvelopeHeader,
    Purpose,
    check_envelope_device,
    encode_envelope,
    parse_envelope,
)
from core.protocol.errors import SUGGESTED_HTTP_STATUS, ProtocolError

ENC = bytes(range(32))
CT = bytes(range(100, 150))


def test_round_trip_keeps_every_field(header: EnvelopeHeader) -> None:
    # given an encoded envelope
    data = encode_envelope(header, ENC, CT)
    # when it is parsed
    env = parse_envelope(data)
    # then every field comes back, and encoding again gives the same bytes
    assert env.header == header
    assert (env.enc, env.ciphertext) == (ENC, CT)
    assert encode_envelope(env.header, env.enc, env.ciphertext) == data


def test_layout_is_little_endian_and_as_documented(header: EnvelopeHeader) -> None:
    data = encode_envelope(header, ENC, CT)
    assert data[:4] == b"TENV" and data[4] == 1
    assert data[5] == 2 and data[6] == 2  # gait, verify
    assert data[7:23] == header.batch_id.bytes
    assert struct.unpack("<QQ", data[23:39]) == (header.capture_start_ms, header.capture_end_ms)
    assert data[39] == len(header.device_id)
    assert len(data) == 39 + 1 + 10 + 1 + 17 + 2 + 32 + 4 + len(CT)


def test_plain_strings_become_enum_members(header: EnvelopeHeader) -> None:
    h = replace(header, factor="face", purpose="enroll")  # type: ignore[arg-type]
    assert h.factor == "face" and h.purpose is Purpose.ENROL


def _valid(header: EnvelopeHeader) -> bytearray:
    return bytearray(encode_envelope(header, ENC, CT))


def _set(buf: bytearray, offset: int, value: bytes) -> bytearray:
    buf[offset : offset + len(value)] = value
    return buf


DEVICE_END = 39 + 1 + 10  # after device id "dev_8f3a2c"
KEY_END = DEVICE_END + 1 + 17
MALFORMED = {
    "empty": (lambda b: bytearray(), "envelope_truncated"),
    "magic prefix only": (lambda b: bytearray(b"TE"), "envelope_truncated"),
    "bad magic": (lambda b: _set(b, 0, b"XENV"), "envelope_bad_magic"),
    "plaintext frame instead": (lambda b: _set(b, 0, b"TPL1"), "envelope_bad_magic"),
    "version 2": (lambda b: _set(b, 4, b"\x02"), "envelope_unsupported_version"),
    "version 0": (lambda b: _set(b, 4, b"\x00"), "envelope_unsupported_version"),
    "factor 0": (lambda b: _set(b, 5, b"\x00"), "envelope_unknown_factor"),
    "factor 9": (lambda b: _set(b, 5, b"\x09"), "envelope_unknown_factor"),
    "purpose 3": (lambda b: _set(b, 6, b"\x03"), "envelope_bad_purpose"),
    "nil batch id": (lambda b: _set(b, 7, bytes(16)), "envelope_bad_batch_id"),
    "uuid v1 batch id": (
        lambda b: _set(b, 7, uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8").bytes),
        "envelope_bad_batch_id",
    ),
    "window ends first": (
        lambda b: _set(b, 23, struct.pack("<QQ", 2000, 1000)),
        "envelope_bad_capture_window",
    ),
    "empty device id": (lambda b: b[:39] + b"\x00" + b[DEVICE_END:], "envelope_bad_device_id"),
    "device id with space": (lambda b: _set(b, 40, b" "), "envelope_bad_device_id"),
    "device id non-ascii": (lambda b: _set(b, 40, b"\xff"), "envelope_bad_device_id"),
    "device id too long": (
        lambda b: b[:39] + b"\x41" + b"a" * 65 + b[DEVICE_END:],
        "envelope_bad_device_id",
    ),
    "key id with slash": (lambda b: _set(b, DEVICE_END + 1, b"/"), "envelope_bad_key_id"),
    "enc length 31": (lambda b: _set(b, KEY_END, struct.pack("<H", 31)), "envelope_bad_enc"),
    "enc length 65535": (lambda b: _set(b, KEY_END, b"\xff\xff"), "envelope_bad_enc"),
    "ciphertext shorter than tag": (
        lambda b: b[: KEY_END + 34] + struct.pack("<I", 15) + bytes(15),
        "envelope_bad_length",
    ),
    "ciphertext length past end": (
        lambda b: _set(b, KEY_END + 34, struct.pack("<I", len(CT) + 1)),
        "envelope_truncated",
    ),
    "ciphertext over the limit": (
        lambda b: _set(b, KEY_END + 34, struct.pack("<I", 2**32 - 1)),
        "envelope_too_large",
    ),
    "trailing byte": (lambda b: b + b"\x00", "envelope_trailing_bytes"),
    "cut inside header": (lambda b: b[:20], "envelope_truncated"),
    "cut inside enc": (lambda b: b[: KEY_END + 10], "envelope_truncated"),
    "cut inside ciphertext": (lambda b: b[:-1], "envelope_truncated"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_envelope_gives_its_code(header: EnvelopeHeader, name: str) -> None:
    # given a valid envelope damaged in one way
    damage, code = MALFORMED[name]
    data = bytes(damage(_valid(header)))
    # when it is parsed, then the defect has its own code, with a suggested HTTP status
    with pytest.raises(ProtocolError) as e:
        parse_envelope(data)
    assert e.value.code == code
    assert e.value.code in SUGGESTED_HTTP_STATUS


def test_every_prefix_and_every_single_byte_change_is_total(header: EnvelopeHeader) -> None:
    # given every truncation and every one-byte change of a valid envelope
    data = bytes(_valid(header))
    candidates = [data[:n] for n in range(len(data))]
    candidates += [data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :] for i in range(len(data))]
    for c in candidates:
        # when parsed, then the result is an envelope or a ProtocolError, never anything else
        try:
            parse_envelope(c)
        except ProtocolError as e:
            assert e.code in SUGGESTED_HTTP_STATUS


def test_non_bytes_input_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        parse_envelope("TENV")  # type: ignore[arg-type]


def test_building_a_header_with_bad_values_is_refused(header: EnvelopeHeader) -> None:
    cases = {
        "envelope_unknown_factor": {"factor": "iris"},
        "envelope_bad_purpose": {"purpose": "train"},
        "envelope_bad_batch_id": {"batch_id": uuid.UUID(int=0)},
        "envelope_bad_capture_window": {"capture_start_ms": -1},
        "envelope_bad_device_id": {"device_id": ""},
        "envelope_bad_key_id": {"key_id": "k" * 65},
    }
    for code, change in cases.items():
        with pytest.raises(ProtocolError) as e:
            replace(header, **change)
        assert e.value.code == code


def test_uuid_v4_batch_ids_are_accepted(header: EnvelopeHeader) -> None:
    h = replace(header, batch_id=uuid.uuid4())
    assert parse_envelope(encode_envelope(h, ENC, CT)).batch_id == h.batch_id


def test_envelope_must_name_the_signing_device(header: EnvelopeHeader) -> None:
    env = parse_envelope(encode_envelope(header, ENC, CT))
    check_envelope_device(env, "dev_8f3a2c")
    with pytest.raises(ProtocolError) as e:
        check_envelope_device(env, "dev_other")
    assert e.value.code == "envelope_device_mismatch"


def test_magic_constant() -> None:
    assert MAGIC == b"TENV"


def test_documented_status_table_matches_the_code() -> None:
    # given the error table of docs/protocol.md
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text(encoding="utf-8")
    documented: dict[str, int] = {}
    for line in doc.splitlines():
        m = re.match(r"\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| (\d{3})", line)
        if m:
            for code in re.findall(r"`([a-z_]+)`", m.group(1)):
                documented[code] = int(m.group(2))
    # then every protocol code has the same suggested status there
    for code, status in SUGGESTED_HTTP_STATUS.items():
        assert documented.get(code) == status, code
