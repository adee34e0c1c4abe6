"""Plaintext codec shared by every factor: named numpy arrays in a compact, versioned frame.

Layout (all integers little-endian), specified in docs/protocol.md:

    magic      4 bytes  b"TPL1"
    flags      u8       bit 0: body is zstd-compressed
    factor     u8 length + ASCII
    schema     u16      per-factor plaintext schema version
    body       (optionally zstd) sequence of arrays:
        count  u16
        per array: name (u8 length + ASCII), dtype (u8 length + numpy str, e.g. "<f4"),
                   ndim u8, dims u32 * ndim, raw little-endian bytes (C order)

Arrays travel as raw bytes, never as JSON lists of floats, so a phone can encode
them with a plain byte buffer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"TPL1"
FLAG_ZSTD = 0x01
ALLOWED_DTYPES = frozenset({"<f4", "<f8", "|u1", "<u2", "<u4", "<i4", "<i8", "|i1", "<i2"})
MAX_ARRAYS = 64
MAX_NDIM = 4
MAX_DECODED_BYTES = 64 * 1024 * 1024


class PlaintextError(ValueError):
    """The plaintext is not a well-formed frame; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Plaintext:
    factor: str
    schema: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def require(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise PlaintextError("plaintext_missing_array", f"array {name!r} is missing") from None


def _dtype_str(a: np.ndarray) -> str:
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder not in ("|", "<", "=") else a.dtype
    s = np.dtype(dt).str
    if s.startswith("="):
        s = "<" + s[1:]
    return s


def encode(
    factor: str, arrays: dict[str, np.ndarray], *, schema: int = 1, compress: bool = False
) -> bytes:
    """Encode named arrays as a plaintext frame (optionally zstd-compressed)."""
    body = bytearray(struct.pack("<H", len(arrays)))
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        dt = _dtype_str(a)
        if dt not in ALLOWED_DTYPES:
            a = a.astype(a.dtype.newbyteorder("<"))
            dt = _dtype_str(a)
        if dt not in ALLOWED_DTYPES:
            raise PlaintextError("plaintext_bad_dtype", f"dtype {dt} is not allowed")
        nb, db = name.encode("ascii"), dt.encode("ascii")
        body += struct.pack("<B", len(nb)) + nb + struct.pack("<B", len(db)) + db
        body += struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape)
        body += a.astype(np.dtype(dt), copy=False).tobytes(order="C")
    flags = 0
    payload = bytes(body)
    if compress:
        import zstandard

        payload = zstandard.ZstdCompressor(level=3).compress(payload)
        flags |= FLAG_ZSTD
    fb = factor.encode("ascii")
    return MAGIC + struct.pack("<BB", flags, len(fb)) + fb + struct.pack("<H", schema) + payload


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = memoryview(buf), 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise PlaintextError("plaintext_truncated", "plaintext ends early")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def _bounded_unzstd(data: bytes, limit: int) -> bytes:
    """Decompress one zstd frame, never producing more than `limit` bytes whatever the header claims."""
    import io

    import zstandard

    out = bytearray()
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
            while chunk := reader.read(min(1 << 20, limit + 1 - len(out))):
                out += chunk
                if len(out) > limit:
                    raise PlaintextError(
                        "plaintext_too_large", f"decompressed plaintext exceeds {limit} bytes"
                    )
    except zstandard.ZstdError as e:
        raise PlaintextError("plaintext_bad_compression", f"zstd: {e}") from None
    return bytes(out)


def decode(data: bytes) -> Plaintext:
    """Decode a plaintext frame; raises PlaintextError with a code on any defect."""
    r = _Reader(data)
    if bytes(r.take(4)) != MAGIC:
        raise PlaintextError("plaintext_bad_magic", "not a Tacit plaintext frame")
    flags, flen = r.unpack("<BB")
    try:
        factor = bytes(r.take(flen)).decode("ascii")
    except UnicodeDecodeError:
        raise PlaintextError("plaintext_bad_factor", "factor is not ASCII") from None
    (schema,) = r.unpack("<H")
    body = bytes(r.buf[r.pos :])
    if flags & FLAG_ZSTD:
        body = _bounded_unzstd(body, MAX_DECODED_BYTES)
    br = _Reader(body)
    (count,) = br.unpack("<H")
    if count > MAX_ARRAYS:
        raise PlaintextError("plaintext_too_many_arrays", f"{count} arrays")
    arrays: dict[str, np.ndarray] = {}
    for _ in range(count):
        (nl,) = br.unpack("<B")
        name = bytes(br.take(nl)).decode("ascii", errors="replace")
        (dl,) = br.unpack("<B")
        dt = bytes(br.take(dl)).decode("ascii", errors="replace")
        if dt not in ALLOWED_DTYPES:
            raise PlaintextError("plaintext_bad_dtype", f"dtype {dt!r} is not allowed")
        (ndim,) = br.unpack("<B")
        if ndim > MAX_NDIM:
            raise PlaintextError("plaintext_bad_shape", f"{ndim} dimensions")
        shape = br.unpack(f"<{ndim}I")
        dtype = np.dtype(dt)
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n > MAX_DECODED_BYTES:
            raise PlaintextError("plaintext_too_large", f"array {name!r} is {n} bytes")
        arrays[name] = np.frombuffer(bytes(br.take(n)), dtype=dtype).reshape(shape)
    if br.pos != len(body):
        raise PlaintextError("plaintext_trailing_bytes", "bytes after the last array")
    return Plaintext(factor=factor, schema=schema, arrays=arrays)
