"""Response and request bodies of the tenant-facing API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "done", "failed", "dead"]


class Accepted(BaseModel):
    job_id: uuid.UUID
    status_url: str
    duplicate: bool = Field(description="True when this (device, batch id) was accepted before")


class ScoreOut(BaseModel):
    score: float = Field(
        description="Calibrated probability in [0, 1] that the batch came from the enrolled user"
    )
    distance: float
    llr: float
    decision: Literal["genuine", "impostor"]
    samples: int
    model_version: str


class JobError(BaseModel):
    code: str
    message: str


# What a tenant reads for errors that are not about its batch: the stored message may quote
# a library's exception (hosts, SQL, paths); operators see it on /ops and in the logs.
INTERNAL_JOB_ERROR = "the job failed on an internal error; the operator's logs hold the details"
TRANSIENT_JOB_ERROR = "a transient error on the server's side; the job is retried"


def public_job_error(code: str, message: str | None) -> JobError:
    """The job's error as a tenant may see it: the code, and a message of ours."""
    if code == "internal_error":
        return JobError(code=code, message=INTERNAL_JOB_ERROR)
    if code == "transient" or code.startswith("transient_"):
        return JobError(code=code, message=TRANSIENT_JOB_ERROR)
    return JobError(code=code, message=message or "")


class JobOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    factor: str
    purpose: str
    user: str
    device_id: uuid.UUID
    batch_id: uuid.UUID
    attempts: int
    created_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    score: ScoreOut | None = None
    error: JobError | None = None
    # an enrol job that is done: its samples were merged into the template, or held (not merged)
    enrolment: Literal["merged", "held"] | None = None

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> JobOut:
        score = None
        if r.get("score") is not None:
            score = ScoreOut(
                score=r["score"],
                distance=r["distance"],
                llr=r["llr"],
                decision="genuine" if r["decision"] else "impostor",
                samples=r["samples"],
                model_version=r["model_version"],
            )
        error = (
            public_job_error(r["error_code"], r["error_message"]) if r.get("error_code") else None
        )
        return cls(
            id=r["id"],
            status=r["status"],
            factor=r["factor"],
            purpose=r["purpose"],
            user=r["user"],
            device_id=r["device_id"],
            batch_id=r["client_batch_id"],
            attempts=r["attempts"],
            created_at=r["created_at"],
            enqueued_at=r["enqueued_at"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            score=score,
            error=error,
            enrolment={"active": "merged", "held": "held"}.get(r.get("enrolment") or ""),  # type: ignore[arg-type]
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class DeviceCreate(BaseModel):
    public_key: str | None = Field(
        default=None, description="Ed25519 public key, base64url (32 bytes)"
    )


class DeviceOut(BaseModel):
    id: uuid.UUID
    user: str
    status: Literal["active", "revoked"]
    created_at: datetime
