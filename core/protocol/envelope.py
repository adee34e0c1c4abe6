"""Upload envelope v1: the binary body of ``POST /v1/batches``.

Layout (all integers little-endian, like the plaintext frame), specified byte by
byte in docs/protocol.md:

    magic            4 bytes  b"TENV"
    version          u8       1
    factor           u8       the factor's WIRE_CODE (core/factors.py): 1 keystroke, 2 gait, 3 face
    purpose          u8       1 enrol, 2 verify
    batch_id         16 bytes UUID (RFC 9562 byte order), version 4 or 7
    capture_start_ms u64      unix epoch milliseconds
    capture_end_ms   u64      >= capture_start_ms
    device_id        u8 length (1..64) + ASCII [A-Za-z0-9_-]
    key_id           u8 length (1..64) + ASCII [A-Za-z0-9._-]
    enc              u16 length (32) + HPKE encapsulated key
    ciphertext       u32 length (>= 16) + HPKE ciphertext (AES-128-GCM, tag included)

Parsing is strict and total: every defect raises ProtocolError with a code.
"""

from __future__ import annotations

import enum
import re
import struct
import uuid
from dataclasses import dataclass

from core import factors as registry
from core.protocol.errors import ProtocolError

MAGIC = b"TENV"
VERSION = 1
CONTENT_TYPE = "application/vnd.tacit.envelope+v1"
ENC_LENGTH = 32  # DHKEM(X25519) encapsulated key
TAG_LENGTH = 16  # AES-128-GCM tag: the smallest ciphertext (empty plaintext)
DEFAULT_MAX_CIPHERTEXT = 8 * 1024 * 1024

_HEADER = struct.Struct("<4sBBB16sQQ")  # magic .. capture_end_ms: 39 bytes
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
KEY_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
TENANT_ID_RE = DEVICE_ID_RE


class Purpose(enum.StrEnum):
    ENROL = "enrol"
    VERIFY = "verify"

    @classmethod
    def _missing_(cls, value: object) -> Purpose | None:
        # DESIGN.md spells it "enroll"; accept both spellings, store one.
        return cls.ENROL if value == "enroll" else None


PURPOSE_CODES: dict[Purpose, int] = {Purpose.ENROL: 1, Purpose.VERIFY: 2}
_PURPOSE_BY_CODE = {v: k for k, v in PURPOSE_CODES.items()}


@dataclass(frozen=True)
class EnvelopeHeader:
    """Everything in an envelope except the HPKE output; also what HPKE `info` binds."""

    device_id: str
    batch_id: uuid.UUID
    factor: str  # an installed factor's name (core/factors.py)
    purpose: Purpose
    capture_start_ms: int
    capture_end_ms: int
    key_id: str

    def __post_init__(self) -> None:
        # Accept a plain string for the purpose, store the enum member.
        try:
            object.__setattr__(self, "purpose", Purpose(self.purpose))
        except ValueError:
            raise ProtocolError(
                "envelope_bad_purpose", f"unknown purpose {self.purpose!r}"
            ) from None
        check_header(self)


@dataclass(frozen=True)
class Envelope:
    header: EnvelopeHeader
    enc: bytes
    ciphertext: bytes

    # Shortcuts for the API, which reads these on every upload.
    @property
    def device_id(self) -> str:
        return self.header.device_id

    @property
    def batch_id(self) -> uuid.UUID:
        return self.header.batch_id

    @property
    def factor(self) -> str:
        return self.header.factor

    @property
    def purpose(self) -> Purpose:
        return self.header.purpose

    @property
    def key_id(self) -> str:
        return self.header.key_id


def check_batch_id(batch_id: uuid.UUID) -> None:
    """A batch id is a client-made random (v4) or time-ordered (v7) UUID, never nil."""
    if batch_id.variant != uuid.RFC_4122 or batch_id.version not in (4, 7):
        raise ProtocolError("envelope_bad_batch_id", "batch id must be a UUID version 4 or 7")


def check_header(h: EnvelopeHeader) -> None:
    """Validate header values; raises ProtocolError with the field's code."""
    if not isinstance(h.device_id, str) or not DEVICE_ID_RE.fullmatch(h.device_id):
        raise ProtocolError("envelope_bad_device_id", "device id must be 1-64 of [A-Za-z0-9_-]")
    if not isinstance(h.key_id, str) or not KEY_ID_RE.fullmatch(h.key_id):
        raise ProtocolError("envelope_bad_key_id", "key id must be 1-64 of [A-Za-z0-9._-]")
    if not isinstance(h.batch_id, uuid.UUID):
        raise ProtocolError("envelope_bad_batch_id", "batch id must be a UUID")
    check_batch_id(h.batch_id)
    factor_code(h.factor)
    if h.purpose not in PURPOSE_CODES:
        raise ProtocolError("envelope_bad_purpose", f"unknown purpose {h.purpose!r}")
    for v in (h.capture_start_ms, h.capture_end_ms):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**64:
            raise ProtocolError("envelope_bad_capture_window", "capture times are u64 epoch ms")
    if h.capture_end_ms < h.capture_start_ms:
        raise ProtocolError("envelope_bad_capture_window", "capture window ends before it starts")


def factor_code(factor: object) -> int:
    """The envelope byte of an installed factor; ProtocolError for any other name."""
    try:
        return registry.get(factor).wire_code  # type: ignore[arg-type]
    except registry.FactorError:
        raise ProtocolError("envelope_unknown_factor", f"unknown factor {factor!r}") from None


def factor_named(code: int) -> str:
    """The installed factor whose envelope byte is `code`; ProtocolError when none is."""
    spec = registry.by_code(code)
    if spec is None:
        raise ProtocolError("envelope_unknown_factor", "unknown factor code")
    return spec.name


def encode_envelope(header: EnvelopeHeader, enc: bytes, ciphertext: bytes) -> bytes:
    """Serialise an envelope; the inverse of `parse_envelope`."""
    if len(enc) != ENC_LENGTH:
        raise ProtocolError("envelope_bad_enc", f"enc must be {ENC_LENGTH} bytes")
    if len(ciphertext) < TAG_LENGTH or len(ciphertext) >= 2**32:
        raise ProtocolError("envelope_bad_length", "ciphertext length out of range")
    d, k = header.device_id.encode("ascii"), header.key_id.encode("ascii")
    return b"".join(
        (
            _HEADER.pack(
                MAGIC,
                VERSION,
                factor_code(header.factor),
                PURPOSE_CODES[header.purpose],
                header.batch_id.bytes,
                header.capture_start_ms,
                header.capture_end_ms,
            ),
            struct.pack("<B", len(d)),
            d,
            struct.pack("<B", len(k)),
            k,
            struct.pack("<H", len(enc)),
            enc,
            struct.pack("<I", len(ciphertext)),
            ciphertext,
        )
    )


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = memoryview(buf), 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise ProtocolError("envelope_truncated", "envelope ends early")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def uint(self, fmt: str) -> int:
        (v,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(v)

    def ascii_id(self, pattern: re.Pattern[str], code: str) -> str:
        raw = self.take(self.uint("<B"))
        text = raw.decode("ascii", errors="replace")
        if not pattern.fullmatch(text):
            raise ProtocolError(code, "identifier must be 1-64 allowed ASCII characters")
        return text


def parse_envelope(data: bytes, *, max_ciphertext: int = DEFAULT_MAX_CIPHERTEXT) -> Envelope:
    """Parse an envelope; any defect raises ProtocolError (never another exception)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("envelope_truncated", "envelope must be bytes")
    r = _Reader(bytes(data))
    # Magic and version first, so a wrong or future format gets its own code.
    head = bytes(data[:4])
    if head != MAGIC:
        if len(head) < 4 and MAGIC.startswith(head):
            raise ProtocolError("envelope_truncated", "envelope ends early")
        raise ProtocolError("envelope_bad_magic", "not a Tacit envelope")
    r.pos = 4
    version = r.uint("<B")
    if version != VERSION:
        raise ProtocolError("envelope_unsupported_version", f"envelope version {version}")
    factor = factor_named(r.uint("<B"))
    purpose = _PURPOSE_BY_CODE.get(r.uint("<B"))
    if purpose is None:
        raise ProtocolError("envelope_bad_purpose", "unknown purpose code")
    batch_id = uuid.UUID(bytes=r.take(16))
    check_batch_id(batch_id)
    start, end = r.uint("<Q"), r.uint("<Q")
    device_id = r.ascii_id(DEVICE_ID_RE, "envelope_bad_device_id")
    key_id = r.ascii_id(KEY_ID_RE, "envelope_bad_key_id")
    enc_len = r.uint("<H")
    if enc_len != ENC_LENGTH:
        raise ProtocolError("envelope_bad_enc", f"enc must be {ENC_LENGTH} bytes, got {enc_len}")
    enc = r.take(enc_len)
    ct_len = r.uint("<I")
    if ct_len > max_ciphertext:
        raise ProtocolError("envelope_too_large", f"ciphertext of {ct_len} bytes")
    if ct_len < TAG_LENGTH:
        raise ProtocolError("envelope_bad_length", "ciphertext shorter than the AEAD tag")
    ciphertext = r.take(ct_len)
    if r.pos != len(r.buf):
        raise ProtocolError("envelope_trailing_bytes", "bytes after the ciphertext")
    header = EnvelopeHeader(
        device_id=device_id,
        batch_id=batch_id,
        factor=factor,
        purpose=purpose,
        capture_start_ms=start,
        capture_end_ms=end,
        key_id=key_id,
    )
    return Envelope(header=header, enc=enc, ciphertext=ciphertext)


def check_envelope_device(envelope: Envelope, signed_device_id: str) -> None:
    """The envelope must name the device that signed the request."""
    if envelope.device_id != signed_device_id:
        raise ProtocolError("envelope_device_mismatch", "envelope names another device")
