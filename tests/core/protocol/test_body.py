from __future__ import annotations

import gzip

import pytest
import zstandard

from core.protocol import body
from core.protocol.errors import ProtocolError

PAYLOAD = b"TENV" + bytes(range(256)) * 4


@pytest.mark.parametrize(
    "encoding, data",
    [
        (None, PAYLOAD),
        ("identity", PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("GZIP", gzip.compress(PAYLOAD)),
        ("zstd", zstandard.ZstdCompressor().compress(PAYLOAD)),
    ],
)
def test_accepted_encodings_decode_to_the_envelope(encoding, data) -> None:
    assert body.decode_body(data, encoding) == PAYLOAD


@pytest.mark.parametrize(
    "encoding, data, code",
    [
        ("br", PAYLOAD, "unsupported_content_encoding"),
        ("gzip", b"not gzip", "body_bad_encoding"),
        ("gzip", gzip.compress(PAYLOAD)[:-5], "body_bad_encoding"),
        ("gzip", gzip.compress(PAYLOAD) + b"x", "body_bad_encoding"),
        ("zstd", b"not zstd", "body_bad_encoding"),
        ("zstd", zstandard.ZstdCompressor().compress(PAYLOAD)[:-4], "body_bad_encoding"),
        ("zstd", zstandard.ZstdCompressor().compress(PAYLOAD) * 2, "body_bad_encoding"),
    ],
)
def test_bad_encodings_have_codes(encoding, data, code) -> None:
    with pytest.raises(ProtocolError) as e:
        body.decode_body(data, encoding)
    assert e.value.code == code


@pytest.mark.parametrize(
    "encoding, compress",
    [
        ("gzip", gzip.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
        (
            "zstd",
            zstandard.ZstdCompressor(write_content_size=False).compress,
        ),
    ],
)
def test_decompression_bomb_stops_at_the_cap(encoding, compress) -> None:
    # given 64 MiB of zeros compressed to a few kilobytes
    bomb = compress(bytes(64 * 1024 * 1024))
    assert len(bomb) < 100_000
    # when decoded with a 1 MiB cap, then it is refused as too large
    with pytest.raises(ProtocolError) as e:
        body.decode_body(bomb, encoding, max_decoded=1024 * 1024)
    assert e.value.code == "body_too_large"


def test_identity_body_over_cap_is_too_large() -> None:
    with pytest.raises(ProtocolError) as e:
        body.decode_body(PAYLOAD, None, max_decoded=10)
    assert e.value.code == "body_too_large"
    with pytest.raises(ProtocolError) as e:
        body.check_body_size(11, max_body=10)
    assert e.value.code == "body_too_large"


def test_content_type_must_be_the_envelope_type() -> None:
    body.check_content_type("application/vnd.tacit.envelope+v1")
    for bad in (None, "application/octet-stream", "application/json"):
        with pytest.raises(ProtocolError) as e:
            body.check_content_type(bad)
        assert e.value.code == "unsupported_media_type"
