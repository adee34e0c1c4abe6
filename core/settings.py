"""One typed settings object, nested by concern, read once per process.

Environment: ``TACIT_<SECTION>__<FIELD>`` (e.g. ``TACIT_STORAGE__BUCKET``), plus the
conventional ``DATABASE_URL`` and ``REDIS_URL``. Outside development, default
secrets are refused.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.queues import DEFAULT_SCORE_QUEUES, DEFAULT_WEBHOOK_QUEUE

DEV_OPS_TOKEN = "dev-ops-token"


class StorageSettings(BaseModel):
    backend: Literal["s3", "local"] = "local"
    bucket: str = "tacit"
    endpoint_url: str | None = None
    region: str = "us-east-1"
    local_dir: Path = Path(".tacit/objects")


class QueueSettings(BaseModel):
    keystroke: str = DEFAULT_SCORE_QUEUES["keystroke"]
    gait: str = DEFAULT_SCORE_QUEUES["gait"]
    face: str = DEFAULT_SCORE_QUEUES["face"]
    webhooks: str = DEFAULT_WEBHOOK_QUEUE

    def score_queue(self, factor: str) -> str:
        return str(getattr(self, factor))


class CryptoSettings(BaseModel):
    # Read by worker processes only; the API never opens this file.
    private_keys_file: Path | None = None


class PoolSettings(BaseModel):
    device: str = "cpu"
    max_batch: int = Field(default=32, ge=1, le=4096)
    max_wait_ms: float = Field(default=5.0, ge=0)
    threads: int = Field(default=32, ge=1, le=512)  # Celery threads = jobs held at once


class LimitSettings(BaseModel):
    max_body_bytes: int = 2 * 1024 * 1024
    max_decoded_bytes: int = 8 * 1024 * 1024
    device_rate_per_min: int = 600
    tenant_rate_per_min: int = 60_000
    backlog_limit: int = 50_000  # per factor queue; above it uploads get 503 + Retry-After


class ReliabilitySettings(BaseModel):
    max_attempts: int = 5
    running_deadline_s: float = 120.0  # a job running longer than this is presumed lost
    queued_deadline_s: float = 900.0  # a queued job older than this is republished
    # Above the longest task: a message delivered to a worker that died before claiming its
    # job is handed out again after this long (kombu restores it; checked every few seconds).
    visibility_timeout_s: int = 300
    relay_poll_s: float = 0.5


class TrustSettings(BaseModel):
    """How factor scores fuse into a user's trust (docs/trust.md)."""

    # prior, half-lives, max_samples, clips and weak_llr: chosen on subject folds of the
    # development data by `tacit eval trust --folds 3` (docs/trust.md, "Tuned values")
    prior_probability: float = Field(default=0.9, gt=0, lt=1)
    # evidence loses half its weight every half-life; per factor, default for others
    half_life_s: dict[str, float] = {"keystroke": 30.0, "gait": 900.0, "face": 120.0}
    default_half_life_s: float = Field(default=3600.0, gt=0)
    max_age_s: float = Field(default=86_400.0, gt=0)  # older scores are ignored
    max_samples: int = Field(default=1, ge=1)  # newest scores used per factor
    llr_clip: float = Field(default=3.0, gt=0)  # one batch can move the log-odds this much at most
    # down (None: llr_clip), and |llr| up to weak_llr counts as no evidence (docs/trust.md)
    llr_clip_negative: float | None = Field(default=None, gt=0)
    weak_llr: float = Field(default=1.0, ge=0)
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
    threads: int = Field(default=64, ge=1, le=1024)
    republish_after_s: float = 120.0  # a published delivery not attempted by then is sent again


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TACIT_", env_nested_delimiter="__", extra="ignore")

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
    # Per-factor overrides of core.scaling.POOL_SCALING (list_length, activation_list_length,
    # min_replicas, max_replicas, cooldown_s, polling_s), e.g. TACIT_SCALING__FACE__MAX_REPLICAS=32;
    # `tacit scale` recommends replicas and emits the KEDA ScaledObjects from the same figures.
    scaling: dict[str, dict[str, int]] = Field(default_factory=dict)
    storage: StorageSettings = StorageSettings()
    queues: QueueSettings = QueueSettings()
    crypto: CryptoSettings = CryptoSettings()
    pool: PoolSettings = PoolSettings()
    limits: LimitSettings = LimitSettings()
    reliability: ReliabilitySettings = ReliabilitySettings()
    trust: TrustSettings = TrustSettings()
    webhooks: WebhookSettings = WebhookSettings()

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env == "production" and self.ops_token == DEV_OPS_TOKEN:
            raise ValueError("TACIT_OPS_TOKEN must be set outside development")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
