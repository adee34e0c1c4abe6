"""Fuzzing the parsers that read attacker-chosen bytes: the upload envelope, the signature
headers, the body's Content-Encoding and the plaintext frame with each factor's checks.

Whatever the input, each raises only its coded error, and the code is one the docs list
(docs/protocol.md, docs/plaintext.md): never an IndexError, a struct.error, a numpy
ValueError or a MemoryError.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.protocol.body import decode_body
from core.protocol.envelope import encode_envelope, parse_envelope
from core.protocol.errors import ProtocolError
from core.protocol.signing import parse_signature_headers
from pipelines import codec
from pipelines.base import SampleError
from pipelines.face.frames import decode_frames
from pipelines.gait.signal import GaitLimits, recording_from_arrays
from pipelines.keystroke.events import decode_typings
from tests.core.protocol.conftest import HEADER

DOCS = Path(__file__).resolve().parents[3] / "docs"
DOCUMENTED = set(
    re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", (DOCS / "protocol.md").read_text())
    + re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", (DOCS / "plaintext.md").read_text())
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENVELOPE = encode_envelope(HEADER, bytes(32), bytes(40))


def frames() -> list[bytes]:
    """One valid frame per factor, plain and compressed: the seeds mutations start from."""
    n = 11
    down = np.arange(n) * 100.0
    arrays = {
        "face": {"frames": np.zeros((3, 20, 18), np.uint8)},
        "keystroke": {
            "key": np.arange(n, dtype=np.uint16),
            "down": down,
            "up": down + 50,
            "sample": np.zeros(n, np.uint32),
        },
        "gait": {
            "acc": np.ones((200, 3), np.float32),
            "gyro": np.ones((200, 3), np.float32),
            "rate_hz": np.array(50.0, np.float32),
        },
    }
    return [codec.encode(f, a, compress=z) for f, a in arrays.items() for z in (False, True)]


SEEDS = frames()


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with bytes overwritten, inserted or cut: deep enough to reach array headers."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(("set", "insert", "cut")))
            i = draw(st.integers(0, max(0, len(data) - 1)))
            if op == "set" and data:
                data[i] = draw(st.integers(0, 255))
            elif op == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            else:
                del data[i : i + draw(st.integers(1, 8))]
        return bytes(data)

    return build()


def decode_gait(data: bytes) -> object:
    limits = GaitLimits()
    frame = codec.decode(data, limits.frame_limits())
    rate = frame.require("rate_hz")
    if rate.size != 1:
        raise SampleError("gait_bad_rate", "one number")
    return recording_from_arrays(
        frame.require("acc"), frame.require("gyro"), float(rate.reshape(())), frame.arrays.get("t")
    )


def assert_documented(fn, data) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(data)
    except (ProtocolError, codec.PlaintextError, SampleError) as e:
        assert e.code in DOCUMENTED, f"{e.code} is not in docs/protocol.md or docs/plaintext.md"


@pytest.mark.parametrize("decoder", [codec.decode, decode_frames, decode_typings, decode_gait])
@FUZZ
@given(data=st.one_of(st.binary(max_size=200), mutated(SEEDS)))
def test_plaintext_decoders_raise_only_documented_codes(decoder, data):  # type: ignore[no-untyped-def]
    assert_documented(decoder, data)


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), mutated([ENVELOPE])))
def test_the_envelope_parser_raises_only_documented_codes(data):  # type: ignore[no-untyped-def]
    assert_documented(parse_envelope, data)


header_names = st.sampled_from(
    ["Tacit-Device", "tacit-timestamp", "Tacit-Nonce", "TACIT-SIGNATURE", "X-Other"]
)


@FUZZ
@given(headers=st.dictionaries(header_names, st.text(max_size=100), max_size=5))
def test_the_signature_header_parser_raises_only_documented_codes(headers):  # type: ignore[no-untyped-def]
    assert_documented(parse_signature_headers, headers)


@FUZZ
@given(
    body=st.binary(max_size=300),
    encoding=st.sampled_from([None, "gzip", "zstd", "identity", "br", " GZIP "]),
)
def test_the_body_decoder_raises_only_documented_codes(body, encoding):  # type: ignore[no-untyped-def]
    assert_documented(lambda b: decode_body(b, encoding, max_decoded=4096), body)
