"""Bodies of the webhook endpoints, messages and delivery log; and of a user's trust."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal["job.completed", "job.failed", "trust.changed", "template.changed"]


class EndpointCreate(BaseModel):
    url: str = Field(
        max_length=2000, description="https URL that receives POSTs (http only where allowlisted)"
    )
    event_types: list[EventType] = Field(
        default_factory=list, description="Empty: every event type"
    )
    description: str = Field(default="", max_length=500)


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the old secret also signs"
    )
    created_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_<base64>: shown once; verify webhook-signature with it")


class RotateSecret(BaseModel):
    grace_s: float | None = Field(
        default=None, ge=0, le=7 * 86_400, description="Default: operator setting"
    )


class DeliveryOut(BaseModel):
    endpoint_id: uuid.UUID
    status: Literal["pending", "succeeded", "dead"]
    attempts: int
    next_attempt_at: datetime
    dead_reason: str | None
    updated_at: datetime


class MessageOut(BaseModel):
    id: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    deliveries: list[DeliveryOut]


class ReplayOut(BaseModel):
    message_id: str
    deliveries: int = Field(description="Deliveries scheduled again")


class AttemptOut(BaseModel):
    id: int
    message_id: str
    event_type: str
    attempt: int
    status_code: int | None
    outcome: Literal["succeeded", "gone", "retry", "dead"]
    error: str | None
    latency_ms: float
    created_at: datetime


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    next_before: int | None = Field(description="Pass as `before` for older attempts")


class FactorTrustOut(BaseModel):
    factor: str
    latest_score: float
    age_s: float = Field(description="Age of the newest score used")
    samples: int = Field(description="Scores used")
    half_life_s: float
    llr: float = Field(description="Their decayed, clipped sum of log-likelihood ratios")


class TrustOut(BaseModel):
    user: str
    probability: float = Field(description="Fused probability that the user is who they claim")
    llr: float = Field(description="Fused log-odds, prior included")
    prior_llr: float
    threshold: float = Field(description="The tenant's operating point")
    decision: Literal["genuine", "impostor", "unknown"]
    factors: list[FactorTrustOut]
    computed_at: datetime
