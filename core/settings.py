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
    visibility_timeout_s: int = 1800  # above the longest task
    relay_poll_s: float = 0.5


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
    metrics_port: int = 9100
    storage: StorageSettings = StorageSettings()
    queues: QueueSettings = QueueSettings()
    crypto: CryptoSettings = CryptoSettings()
    pool: PoolSettings = PoolSettings()
    limits: LimitSettings = LimitSettings()
    reliability: ReliabilitySettings = ReliabilitySettings()

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env == "production" and self.ops_token == DEV_OPS_TOKEN:
            raise ValueError("TACIT_OPS_TOKEN must be set outside development")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
