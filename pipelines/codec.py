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

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"TPL1"
FLAG_ZSTD = 0x01
ALLOWED_DTYPES = frozenset({"<f4", "<f8", "|u1", "<u2", "<u4", "<i4", "<i8", "|i1", "<i2"})
MAX_ARRAYS = 64
MAX_NDIM = 4
MAX_DECODED_BYTES = 64 * 1024 * 1024


class CodedError(ValueError):
    """A refused input whose `code` is machine-readable (the job fails with it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PlaintextError(CodedError):
    """The plaintext is not a well-formed frame; `code` is machine-readable."""


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

    def at_end(self) -> bool:
        return self.pos == len(self.buf)


class _ZstdReader:
    """The compressed body, decompressed only as far as the parser has asked.

    Array headers are read (and checked) before their data is decompressed, so a small
    frame declaring a huge array is refused having produced a few bytes, and no more
    than `limit` bytes are ever produced whatever the zstd header claims.
    """

    def __init__(self, data: bytes, limit: int) -> None:
        import io

        import zstandard

        self._zstd_error = zstandard.ZstdError
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        self.limit, self.pos = limit, 0

    def take(self, n: int) -> bytes:
        if n < 0:
            raise PlaintextError("plaintext_truncated", "plaintext ends early")
        if self.pos + n > self.limit:
            raise PlaintextError(
                "plaintext_too_large", f"decompressed plaintext exceeds {self.limit} bytes"
            )
        out = bytearray()
        try:
            while len(out) < n:
                chunk = self._reader.read(min(1 << 20, n - len(out)))
                if not chunk:
                    raise PlaintextError("plaintext_truncated", "plaintext ends early")
                out += chunk
        except self._zstd_error as e:
            raise PlaintextError("plaintext_bad_compression", f"zstd: {e}") from None
        self.pos += n
        return bytes(out)

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def at_end(self) -> bool:
        try:
            return not self._reader.read(1)
        except self._zstd_error as e:
            raise PlaintextError("plaintext_bad_compression", f"zstd: {e}") from None


ShapeCheck = Callable[[str, str, tuple[int, ...]], None]


@dataclass(frozen=True)
class FrameLimits:
    """What one factor accepts in a frame, checked from the array headers before any data.

    `max_bytes` bounds the whole body (after decompression); `check(name, dtype, shape)`
    raises a coded error for an array the factor would refuse anyway (too many frames,
    windows, typings), so its bytes are never decompressed or copied.
    """

    max_bytes: int = MAX_DECODED_BYTES
    check: ShapeCheck | None = None


DEFAULT_LIMITS = FrameLimits()


def decode(data: bytes, limits: FrameLimits = DEFAULT_LIMITS) -> Plaintext:
    """Decode a plaintext frame; raises PlaintextError (or the factor's own coded error
    from `limits.check`) on any defect, never holding more than `limits.max_bytes`."""
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
    br: _Reader | _ZstdReader
    if flags & FLAG_ZSTD:
        br = _ZstdReader(body, limits.max_bytes)
    else:
        if len(body) > limits.max_bytes:
            raise PlaintextError(
                "plaintext_too_large", f"plaintext of {len(body)} bytes exceeds {limits.max_bytes}"
            )
        br = _Reader(body)
    (count,) = br.unpack("<H")
    if count > MAX_ARRAYS:
        raise PlaintextError("plaintext_too_many_arrays", f"{count} arrays")
    arrays: dict[str, np.ndarray] = {}
    declared = 0
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
        shape = tuple(int(d) for d in br.unpack(f"<{ndim}I"))
        dtype = np.dtype(dt)
        n = math.prod(shape) * dtype.itemsize  # Python ints: four u32 dims cannot wrap
        if limits.check is not None:  # the factor's own code first (too many frames, ...)
            limits.check(name, dt, shape)
        declared += n
        if n > MAX_DECODED_BYTES or declared > limits.max_bytes:
            raise PlaintextError(
                "plaintext_too_large",
                f"array {name!r} of {n} bytes takes the frame over {limits.max_bytes} bytes",
            )
        arrays[name] = np.frombuffer(bytes(br.take(n)), dtype=dtype).reshape(shape)
    if not br.at_end():
        raise PlaintextError("plaintext_trailing_bytes", "bytes after the last array")
    return Plaintext(factor=factor, schema=schema, arrays=arrays)


def decode_factor(
    data: bytes, factor: str, schema: int, limits: FrameLimits = DEFAULT_LIMITS
) -> Plaintext:
    """Decode a frame that must be `factor`'s plaintext schema `schema` (else PlaintextError)."""
    frame = decode(data, limits)
    if frame.factor != factor:
        raise PlaintextError(
            "plaintext_wrong_factor", f"frame is for {frame.factor!r}, not {factor!r}"
        )
    if frame.schema != schema:
        raise PlaintextError(
            "plaintext_bad_schema", f"{factor} schema {frame.schema} is not supported"
        )
    return frame
