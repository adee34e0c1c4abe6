"""One typed settings object, nested by concern, read once per process.

Environment: ``TACIT_<SECTION>__<FIELD>`` (e.g. ``TACIT_STORAGE__BUCKET``), plus the
conventional ``DATABASE_URL`` and ``REDIS_URL``. Outside development, default
secrets are refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import factors
from core.queues import DEFAULT_WEBHOOK_QUEUE

DEV_OPS_TOKEN = "dev-ops-token"
# Tokens that were ever shipped in this repository: never good enough anywhere but development.
KNOWN_WEAK_TOKENS = frozenset({DEV_OPS_TOKEN, "local-ops-token-change-me", "changeme", "change-me"})
MIN_TOKEN_BITS = 256


def strong_token(token: str) -> bool:
    """At least 32 random bytes as text: 64 hex digits, 43 base64url characters or longer.

    The estimate is length x bits per character of the narrowest alphabet the token fits;
    a token of few distinct characters (``aaaa...``) or a shipped default never passes.
    """
    import math
    import string

    if token in KNOWN_WEAK_TOKENS or len(set(token)) < 8:
        return False
    alphabets = (
        string.hexdigits,
        string.ascii_letters + string.digits + "-_=",
        string.ascii_letters + string.digits + "+/=",
        string.printable,
    )
    for alphabet in alphabets:
        if set(token) <= set(alphabet):
            bits = 4 if alphabet is string.hexdigits else 6 if len(alphabet) < 70 else math.log2(95)
            return len(token) * bits >= MIN_TOKEN_BITS
    return False


class StorageSettings(BaseModel):
    backend: Literal["s3", "local"] = "local"
    bucket: str = "tacit"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    local_dir: Path = Path(".tacit/objects")


class QueueSettings(BaseModel):
    """Queue names: ``webhooks`` and one field per installed factor (``TACIT_QUEUES__<FACTOR>``),
    ``score.<factor>`` unless set."""

    model_config = ConfigDict(extra="allow")

    webhooks: str = DEFAULT_WEBHOOK_QUEUE

    @model_validator(mode="before")
    @classmethod
    def _factor_queues(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {str(k).lower(): v for k, v in data.items()}
        for name in set(data) - {"webhooks"}:
            factors.get(name)  # a queue for a factor that is not installed is a typo
            if not isinstance(data[name], str) or not data[name]:
                raise ValueError(f"queues.{name} must be a queue name")
        return {f.name: f.queue for f in factors.installed().values()} | data

    def score_queue(self, factor: str) -> str:
        """The score queue of an installed factor (FactorError for any other name)."""
        spec = factors.get(factor)
        # a factor installed after these settings were read takes its default queue
        return str((self.model_extra or {}).get(factor, spec.queue))

    def score_queues(self) -> dict[str, str]:
        """Every installed factor's score queue, by factor."""
        return {f: self.score_queue(f) for f in factors.names()}


class CryptoSettings(BaseModel):
    # Read by worker processes only; the API never opens this file.
    private_keys_file: Path | None = None


class PoolSettings(BaseModel):
    device: str = "cpu"
    max_batch: int = Field(default=32, ge=1, le=4096)
    max_wait_ms: float = Field(default=5.0, ge=0)
    threads: int = Field(default=32, ge=1, le=512)  # Celery threads = jobs held at once
    # "local": the model runs in the pool (torch); "oip": in an external inference server
    # (Triton, KServe, MLServer) spoken to over the Open Inference Protocol v2 (docs/workers.md)
    backend: Literal["local", "oip"] = "local"
    oip_url: str = ""  # http://host:port (REST) or grpc://host:port
    oip_model: str = ""  # the server's model name; default: the factor's name
    oip_timeout_s: float = Field(
        default=10.0, gt=0, le=300
    )  # gRPC: the whole request; REST: each connect, read, write


class LimitSettings(BaseModel):
    max_body_bytes: int = 2 * 1024 * 1024
    max_decoded_bytes: int = 8 * 1024 * 1024
    device_rate_per_min: int = 600
    tenant_rate_per_min: int = 60_000
    backlog_limit: int = 50_000  # per factor queue; above it uploads get 503 + Retry-After


class BenchSettings(BaseModel):
    # `POST /v1/bench/noop` reads a body and answers 202: the ceiling `tacit bench ingest`
    # compares uploads with, on the same server. Off unless a benchmark turns it on.
    noop_endpoint: bool = False


class ReliabilitySettings(BaseModel):
    max_attempts: int = 5
    running_deadline_s: float = 120.0  # a job running longer than this is presumed lost
    queued_deadline_s: float = 900.0  # a queued job older than this is republished
    # Above the longest task: a message delivered to a worker that died before claiming its
    # job is handed out again after this long (kombu restores it; checked every few seconds).
    visibility_timeout_s: int = 300
    relay_poll_s: float = 0.5
    # An upload commits its rows within half of this after writing its blob, or is refused
    # (503 upload_timeout); the relay removes blobs no batch row references once they are
    # older than this, looking every orphan_sweep_every_s (a listing of raw/).
    upload_timeout_s: float = Field(default=60.0, gt=0)
    orphan_sweep_every_s: float = Field(default=300.0, gt=0)


class TrustSettings(BaseModel):
    """How factor scores fuse into a user's trust (docs/trust.md)."""

    # prior, half-lives, max_samples, clips and weak_llr: chosen on subject folds of the
    # development data by `tacit eval trust --folds 3` (docs/trust.md, "Tuned values")
    prior_probability: float = Field(default=0.97, gt=0, lt=1)
    # evidence loses half its weight every half-life: per factor, the factor's own
    # HALF_LIFE_S (core/factors.py) unless set here, default_half_life_s for the others
    half_life_s: dict[str, float] = {}
    default_half_life_s: float = Field(default=3600.0, gt=0)
    max_age_s: float = Field(default=86_400.0, gt=0)  # older scores are ignored
    max_samples: int = Field(default=1, ge=1)  # newest scores used per factor
    llr_clip: float = Field(default=2.0, gt=0)  # one batch can move the log-odds this much at most
    # down (None: llr_clip), and |llr| up to weak_llr counts as no evidence (docs/trust.md)
    llr_clip_negative: float | None = Field(default=12.0, gt=0)
    weak_llr: float = Field(default=0.25, ge=0)
    notify_delta: float = Field(default=0.1, gt=0, le=1)  # trust.changed when p moves this much


class WebhookSettings(BaseModel):
    """Delivery policy of the webhook pool (docs/webhooks.md)."""

    # delay before each attempt; the first is immediate
    retry_schedule_s: list[float] = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000]
    jitter: float = Field(default=0.2, ge=0, le=1)  # +-20% of each delay
    timeout_s: float = Field(default=15.0, gt=0)
    max_retry_after_s: float = 86_400.0
    disable_after_s: float = 5 * 86_400.0  # an endpoint failing this long without a success
    rotation_grace_s: float = 86_400.0  # the old secret also signs for this long
    # CIDR networks an operator permits although private; http is accepted there
    allowlist: list[str] = []
    ports: list[int] = []  # ports besides 443 a public endpoint may use (inside the allowlist: any)
    max_in_flight_per_endpoint: int = Field(
        default=4, ge=1
    )  # slow endpoints cannot hold every thread
    busy_delay_s: float = Field(default=2.0, gt=0)  # a delivery over that cap waits this long
    # 32 bytes, canonical base64url, sealing endpoint secrets at rest (core/webhooks/sealing.py)
    secret_key: str = Field(default="", pattern=r"^([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])?$")
    threads: int = Field(default=64, ge=1, le=1024)
    republish_after_s: float = 120.0  # a published delivery not attempted by then is sent again


class HttpSettings(BaseModel):
    """What the API accepts from one connection (docs/operations.md, "Hostile clients")."""

    json_body_bytes: int = Field(default=64 * 1024, ge=1024)  # every JSON route
    login_body_bytes: int = Field(default=4 * 1024, ge=256)  # the /ops/login form
    body_timeout_s: float = Field(default=30.0, gt=0)  # whole body, from the first byte read
    header_timeout_s: float = Field(default=10.0, gt=0)  # request line and headers
    keep_alive_s: float = Field(default=5.0, gt=0)  # idle connection between requests
    max_connections: int = Field(default=2048, ge=1)  # per process; above it 503
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    max_json_depth: int = Field(default=32, ge=2)
    # Proxies whose X-Forwarded-Proto / X-Forwarded-For are believed (CIDR networks).
    trusted_proxies: list[str] = []
    # Client-address limits of the unauthenticated routes, per minute (generous: phones
    # behind a carrier NAT share one address).
    redeem_per_min: int = Field(default=120, ge=1)
    keys_per_min: int = Field(default=600, ge=1)
    readyz_per_min: int = Field(default=600, ge=1)
    unknown_device_ttl_s: float = Field(default=30.0, ge=0)  # negative cache of device ids
    unknown_device_cache: int = Field(default=10_000, ge=0)


class OpsSettings(BaseModel):
    """The operator dashboard's sessions and login (docs/operations.md)."""

    session_ttl_s: int = Field(default=12 * 3600, ge=60)
    login_attempts_per_min: int = Field(default=10, ge=1)  # per client address
    # When set, /ops and /metrics are served only on this port, on their own listener.
    internal_port: int | None = Field(default=None, ge=1, le=65535)


class PlaintextSettings(BaseModel):
    """Per-factor maxima of one batch's plaintext, checked in the workers from the array
    headers before anything is decompressed (docs/plaintext.md, docs/operations.md).

    ``TACIT_PLAINTEXT__<FACTOR>_<FIELD>`` sets a field of the factor pipeline's ``limits``
    (e.g. ``FACE_MAX_FRAMES``); each factor keeps its own defaults and bounds, checked when
    its pool starts.
    """

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _factor_limits(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            key = str(key).lower()
            out[key] = _plaintext_limit(key, value)
        return out


def _plaintext_limit(key: str, value: Any) -> int:
    """``<factor>_<limit>``: a limit the installed factor declares, within its bounds."""
    bounds = {
        f"{f.name}_{limit}": b
        for f in factors.installed().values()
        for limit, b in f.plaintext_bounds.items()
    }
    if key not in bounds:
        raise ValueError(
            f"plaintext.{key}: not a limit of an installed factor ({', '.join(sorted(bounds))})"
        )
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"plaintext.{key} must be an integer") from None
    low, high = bounds[key]
    if n < low or (high is not None and n > high):
        raise ValueError(f"plaintext.{key} must be in {low}..{high if high is not None else ''}")
    return n


class EnrolmentSettings(BaseModel):
    """Enrolment windows, held samples and template rebuilds (docs/protocol.md section 9)."""

    min_ttl_s: int = Field(default=60, ge=1)
    max_ttl_s: int = Field(default=7 * 86_400, ge=1)  # a window of a week at most
    default_ttl_s: int = Field(default=900, ge=1)
    held_ttl_s: float = Field(
        default=7 * 86_400.0, gt=0
    )  # held samples the tenant did not accept expire
    max_samples: int = Field(default=50, ge=1)  # newest enrolment batches kept per user and factor
    republish_rebuild_after_s: float = Field(
        default=300.0, gt=0
    )  # a rebuild not done by then is sent again


class RetentionSettings(BaseModel):
    """What the relay's sweeper deletes, in bounded batches (docs/security.md, retention)."""

    verify_days: int = Field(
        default=30, ge=1, le=3650
    )  # raw verify batches; a tenant may set its own
    outbox_days: float = Field(default=1.0, gt=0)  # published outbox rows
    webhook_days: float = Field(
        default=7.0, gt=0
    )  # delivered (or dead) webhook messages and attempts
    every_s: float = Field(default=60.0, gt=0)  # how often the sweeper prunes
    batch: int = Field(
        default=500, ge=1, le=10_000
    )  # rows per statement, so a sweep never holds locks long


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TACIT_", env_nested_delimiter="__", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/tacit",
        validation_alias=AliasChoices("DATABASE_URL", "TACIT_DATABASE_URL"),
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "TACIT_REDIS_URL"),
    )
    ops_token: str = DEV_OPS_TOKEN
    metrics_port: int = 9100  # workers' and relay's /metrics + /healthz; 0 turns it off
    # Per-factor overrides of each factor's core.scaling.pool_scaling() (list_length, activation_list_length,
    # min_replicas (0 allowed), max_replicas, cooldown_s, polling_s, latency_objective_s,
    # activation_age_s), e.g. TACIT_SCALING__FACE__MIN_REPLICAS=1; `tacit scale`,
    # `tacit up --autoscale` and the KEDA ScaledObjects all use the same figures.
    scaling: dict[str, dict[str, int | float]] = Field(default_factory=dict)
    storage: StorageSettings = StorageSettings()
    queues: QueueSettings = Field(default_factory=QueueSettings)
    crypto: CryptoSettings = CryptoSettings()
    pool: PoolSettings = PoolSettings()
    limits: LimitSettings = LimitSettings()
    reliability: ReliabilitySettings = ReliabilitySettings()
    trust: TrustSettings = TrustSettings()
    webhooks: WebhookSettings = WebhookSettings()
    http: HttpSettings = HttpSettings()
    ops: OpsSettings = OpsSettings()
    plaintext: PlaintextSettings = PlaintextSettings()
    enrolment: EnrolmentSettings = EnrolmentSettings()
    retention: RetentionSettings = RetentionSettings()
    bench: BenchSettings = BenchSettings()

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env == "production" and self.ops_token == DEV_OPS_TOKEN:
            raise ValueError("TACIT_OPS_TOKEN must be set outside development")
        if self.env != "development" and not strong_token(self.ops_token):
            raise ValueError(
                "TACIT_OPS_TOKEN must hold at least 32 random bytes outside development"
                " (e.g. `openssl rand -hex 32`)"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
