"""Python device SDK: enrol a device, encrypt batches, sign and upload them with retries.

The reference client for docs/protocol.md. A phone SDK in Kotlin or Swift does the
same steps; sdk/vectors/v1.json holds the bytes to check it against.

Retries reuse the same batch id and envelope bytes (the server answers a repeated
batch id with the same job), and sign every attempt afresh (new timestamp and nonce).
"""

from __future__ import annotations

import email.utils
import gzip
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from core.protocol import hpke, signing
from core.protocol.envelope import CONTENT_TYPE, EnvelopeHeader, Purpose, factor_code
from core.protocol.errors import ProtocolError
from core.protocol.keyring import b64url_decode
from core.protocol.retry_after import parse_retry_after

UPLOAD_PATH = "/v1/batches"
REDEEM_PATH = "/v1/devices/redeem"
KEYS_PATH = "/v1/keys"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
CLOCK_CODES = frozenset({"signature_stale", "signature_future"})


class UploadError(Exception):
    """The server refused a request, or retries ran out; `code` is the server's error code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after


@dataclass(frozen=True)
class ServerKey:
    key_id: str
    public_key: bytes
    status: str


@dataclass(frozen=True)
class DeviceCredentials:
    """What a phone keeps after enrolment (the signing key belongs in the platform keystore)."""

    device_id: str
    tenant_id: str
    signing_key: ed25519.Ed25519PrivateKey

    def signing_key_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 seed, for storing."""
        return self.signing_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class UploadReceipt:
    job_id: str
    status_url: str
    batch_id: uuid.UUID
    attempts: int


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        err = response.json()["error"]
        return str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200]


def parse_server_keys(document: Mapping[str, Any]) -> list[ServerKey]:
    """Read a ``GET /v1/keys`` body."""
    try:
        return [
            ServerKey(str(k["key_id"]), b64url_decode(k["public_key"]), str(k["status"]))
            for k in document["keys"]
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise UploadError("bad_keys_document", f"unexpected /v1/keys body: {e}") from None


def current_server_key(keys: Sequence[ServerKey]) -> ServerKey:
    """The key new batches are sealed to."""
    for k in keys:
        if k.status == "current":
            return k
    raise UploadError("no_current_key", "the server published no current key")


def fetch_server_keys(base_url: str, *, http: httpx.Client | None = None) -> list[ServerKey]:
    """``GET /v1/keys``: the server's published encryption keys."""
    with _client(base_url, http) as c:
        r = c.get(KEYS_PATH)
    if r.status_code != 200:
        raise UploadError(*_error_of(r), status=r.status_code)
    return parse_server_keys(r.json())


@dataclass(frozen=True)
class EnrolmentWindow:
    """While it is open, the user's enrol batches of its factors (from its device, if set) count."""

    enrolment_id: str
    user: str
    factors: tuple[str, ...]
    device_id: str | None
    expires_at: str


def open_enrolment_window(
    base_url: str,
    api_key: str,
    user: str,
    factors: Sequence[str],
    *,
    ttl_s: int | None = None,
    device_id: str | None = None,
    replace: bool = False,
    http: httpx.Client | None = None,
) -> EnrolmentWindow:
    """The tenant's server opens an enrolment window (`POST /v1/users/{user}/enrolments`).

    Server to server, with the tenant's API key: a phone can never open one. Enrol
    uploads outside an open window are refused with 409 `enrolment_closed`.
    """
    body: dict[str, Any] = {"factors": list(factors), "replace": replace}
    if ttl_s is not None:
        body["ttl_s"] = ttl_s
    if device_id is not None:
        body["device_id"] = device_id
    with _client(base_url, http) as c:
        r = c.post(
            f"/v1/users/{user}/enrolments",
            json=body,
            headers={"Authorization": f"Bearer {api_key}"},
        )
    if r.status_code != 201:
        raise UploadError(*_error_of(r), status=r.status_code)
    w = r.json()
    return EnrolmentWindow(
        w["enrolment_id"], w["user"], tuple(w["factors"]), w["device_id"], w["expires_at"]
    )


def redeem_enrolment(
    base_url: str,
    token: str,
    *,
    signing_key: ed25519.Ed25519PrivateKey | None = None,
    http: httpx.Client | None = None,
) -> DeviceCredentials:
    """Redeem a one-time enrolment token with this phone's Ed25519 key (made here if not given)."""
    key = signing_key or ed25519.Ed25519PrivateKey.generate()
    with _client(base_url, http) as c:
        r = c.post(REDEEM_PATH, json=signing.sign_redemption(key, token))
    if r.status_code not in (200, 201):
        raise UploadError(*_error_of(r), status=r.status_code)
    body = r.json()
    return DeviceCredentials(str(body["device_id"]), str(body["tenant_id"]), key)


class _Borrowed:
    """Context manager over a caller's httpx client that leaves it open."""

    def __init__(self, c: httpx.Client) -> None:
        self.c = c

    def __enter__(self) -> httpx.Client:
        return self.c

    def __exit__(self, *exc: object) -> None:
        return None


def _client(base_url: str, http: httpx.Client | None) -> httpx.Client | _Borrowed:
    return _Borrowed(http) if http is not None else httpx.Client(base_url=base_url, timeout=30.0)


class DeviceClient:
    """Uploads a device's batches: envelope, HPKE seal, signature, POST, bounded retries."""

    def __init__(
        self,
        base_url: str,
        device_id: str,
        signing_key: ed25519.Ed25519PrivateKey,
        server_keys: Sequence[ServerKey],
        tenant_id: str,
        *,
        http: httpx.Client | None = None,
        max_attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        content_encoding: str | None = None,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if content_encoding not in (None, "gzip", "zstd"):
            raise ValueError("content_encoding must be None, 'gzip' or 'zstd'")
        self.device_id, self.tenant_id = device_id, tenant_id
        self.signing_key = signing_key
        self.server_key = current_server_key(server_keys)
        self.max_attempts, self.content_encoding = max(1, max_attempts), content_encoding
        self.backoff_base_s, self.backoff_max_s = backoff_base_s, backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep, self._clock, self._rng = sleep, clock, rng
        self._clock_offset = 0.0  # server time minus ours, learnt from a stale/future answer
        self._own_http = http is None
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout_s)

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def build_envelope(
        self,
        frame: bytes,
        *,
        factor: str,
        purpose: Purpose | str,
        capture_start_ms: int,
        capture_end_ms: int,
        batch_id: uuid.UUID | None = None,
    ) -> tuple[uuid.UUID, bytes]:
        """Seal a plaintext frame to the current server key; returns (batch_id, envelope bytes).

        Keep both until the upload succeeds: a retry after an app restart must send them again.
        """
        header = EnvelopeHeader(
            device_id=self.device_id,
            batch_id=batch_id or uuid.uuid4(),
            factor=factor,
            purpose=Purpose(purpose),
            capture_start_ms=capture_start_ms,
            capture_end_ms=capture_end_ms,
            key_id=self.server_key.key_id,
        )
        envelope = hpke.seal_envelope(self.server_key.public_key, self.tenant_id, header, frame)
        return header.batch_id, envelope

    def upload(
        self,
        arrays: Mapping[str, Any],
        *,
        factor: str,
        purpose: Purpose | str,
        capture_start_ms: int,
        capture_end_ms: int,
        schema: int = 1,
        compress: bool = True,
        batch_id: uuid.UUID | None = None,
    ) -> UploadReceipt:
        """Encode named arrays as a plaintext frame (zstd inside the encryption), seal, send."""
        from pipelines.codec import encode  # numpy only; the SDK never needs torch

        factor_code(factor)  # an installed factor, or ProtocolError before anything is built
        frame = encode(factor, dict(arrays), schema=schema, compress=compress)
        bid, envelope = self.build_envelope(
            frame,
            factor=factor,
            purpose=purpose,
            capture_start_ms=capture_start_ms,
            capture_end_ms=capture_end_ms,
            batch_id=batch_id,
        )
        return self.send(bid, envelope)

    def send(self, batch_id: uuid.UUID, envelope: bytes) -> UploadReceipt:
        """POST an envelope, retrying network errors, 429 and 5xx backpressure with the same bytes."""
        body, headers = envelope, {"Content-Type": CONTENT_TYPE}
        if self.content_encoding == "gzip":
            body, headers["Content-Encoding"] = gzip.compress(envelope, mtime=0), "gzip"
        elif self.content_encoding == "zstd":
            import zstandard

            body = zstandard.ZstdCompressor(level=3).compress(envelope)
            headers["Content-Encoding"] = "zstd"
        clock_fixed = False
        last = UploadError("not_sent", "no attempt made")
        for attempt in range(1, self.max_attempts + 1):
            signed = signing.sign(
                self.signing_key,
                method="POST",
                target=UPLOAD_PATH,
                body=body,
                device_id=self.device_id,
                timestamp=int(self._clock() + self._clock_offset),
            )
            try:
                r = self.http.post(UPLOAD_PATH, content=body, headers={**headers, **signed})
            except httpx.TransportError as e:
                last = UploadError("network_error", f"{type(e).__name__}: {e}")
                self._wait(attempt, None)
                continue
            if r.status_code in (200, 201, 202):
                data = r.json()
                return UploadReceipt(
                    str(data["job_id"]), str(data["status_url"]), batch_id, attempt
                )
            code, message = _error_of(r)
            retry_after = parse_retry_after(
                r.headers.get("Retry-After"), now=datetime.fromtimestamp(self._clock(), UTC)
            )
            last = UploadError(code, message, status=r.status_code, retry_after=retry_after)
            if r.status_code == 401 and code in CLOCK_CODES and not clock_fixed:
                clock_fixed = self._learn_clock(r)
                if clock_fixed:
                    continue
            if r.status_code not in RETRY_STATUSES:
                raise last
            if retry_after is not None and retry_after > self.max_retry_after_s:
                raise last  # the app's scheduler should try again later, same batch id
            self._wait(attempt, retry_after)
        raise last

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        if attempt >= self.max_attempts:
            return
        if retry_after is not None:
            # Honour the server, plus a little jitter so that phones do not return in step.
            delay = retry_after + self._rng() * self.backoff_base_s
        else:
            delay = self._rng() * min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        self._sleep(delay)

    def _learn_clock(self, response: httpx.Response) -> bool:
        """Adopt the server's clock from its Date header after a stale/future refusal."""
        try:
            server = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return False
        self._clock_offset = server - self._clock()
        return True


__all__ = [
    "DeviceClient",
    "DeviceCredentials",
    "EnrolmentWindow",
    "ProtocolError",
    "ServerKey",
    "UploadError",
    "UploadReceipt",
    "current_server_key",
    "fetch_server_keys",
    "open_enrolment_window",
    "parse_server_keys",
    "redeem_enrolment",
]
