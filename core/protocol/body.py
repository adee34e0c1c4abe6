"""Upload body checks that need no state: content type, content encoding, size limits.

The body is signed as sent (possibly compressed); the API verifies the signature
first, then calls `decode_body` to undo Content-Encoding under a size cap, so a
small compressed body cannot expand without bound.
"""

from __future__ import annotations

import zlib

from core.protocol.envelope import CONTENT_TYPE
from core.protocol.errors import ProtocolError

CONTENT_ENCODINGS = ("identity", "gzip", "zstd")
DEFAULT_MAX_BODY = 2 * 1024 * 1024  # as sent (settings: limits.max_body_bytes)
DEFAULT_MAX_DECODED = 8 * 1024 * 1024  # after decompression (limits.max_decoded_bytes)


def check_content_type(content_type: str | None) -> None:
    """Only the v1 envelope media type is accepted (parameters are not allowed)."""
    if (content_type or "").strip().lower() != CONTENT_TYPE:
        raise ProtocolError("unsupported_media_type", f"Content-Type must be {CONTENT_TYPE}")


def check_body_size(length: int, *, max_body: int = DEFAULT_MAX_BODY) -> None:
    """Reject a body (or a Content-Length) over the as-sent limit."""
    if length > max_body:
        raise ProtocolError("body_too_large", f"body of {length} bytes exceeds {max_body}")


def decode_body(
    body: bytes, content_encoding: str | None, *, max_decoded: int = DEFAULT_MAX_DECODED
) -> bytes:
    """Undo Content-Encoding (identity, gzip or zstd), never producing more than `max_decoded` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in CONTENT_ENCODINGS:
        raise ProtocolError("unsupported_content_encoding", f"Content-Encoding {encoding!r}")
    if encoding == "identity":
        out = body
    elif encoding == "gzip":
        out = _gunzip(body, max_decoded)
    else:
        out = _unzstd(body, max_decoded)
    if len(out) > max_decoded:
        raise ProtocolError("body_too_large", f"decoded body exceeds {max_decoded} bytes")
    return out


def _gunzip(body: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip container only
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise ProtocolError("body_bad_encoding", f"gzip: {e}") from None
    if len(out) > limit:
        raise ProtocolError("body_too_large", f"decoded body exceeds {limit} bytes")
    if not d.eof or d.unused_data:
        raise ProtocolError("body_bad_encoding", "gzip stream is truncated or has trailing data")
    return out


def _unzstd(body: bytes, limit: int) -> bytes:
    import io

    import zstandard

    d = zstandard.ZstdDecompressor()
    out = bytearray()
    try:
        # Read output in bounded steps: a frame header may claim any content size, and
        # zstd can expand a few bytes into megabytes, so never ask for more than the cap.
        with d.stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
            while chunk := reader.read(min(1 << 20, limit + 1 - len(out))):
                out += chunk
                if len(out) > limit:
                    raise ProtocolError("body_too_large", f"decoded body exceeds {limit} bytes")
        # The output is now known to be small; a second pass tells a whole single frame
        # from a truncated one or one followed by more data.
        check = d.decompressobj()
        check.decompress(body)
    except zstandard.ZstdError as e:
        raise ProtocolError("body_bad_encoding", f"zstd: {e}") from None
    if not check.eof or check.unused_data:
        raise ProtocolError("body_bad_encoding", "zstd body must be exactly one whole frame")
    return bytes(out)
