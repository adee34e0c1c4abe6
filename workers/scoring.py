"""Scoring one job: load by id, fetch, open, decode, embed (batched), compare, persist."""

from __future__ import annotations

import json
import logging
import time
import uuid

import numpy as np

from core.jobs import repository as jobs
from core.scores import repository as scores
from core.webhooks import events as webhook_events
from pipelines import codec
from pipelines.base import Template
from workers import envelope
from workers import metrics as observe
from workers.errors import Verdict, classify
from workers.runtime import Runtime

log = logging.getLogger("tacit.worker")


def _pack(factor: str, arrays: dict[str, np.ndarray]) -> bytes:
    return codec.encode(factor, arrays, schema=1)


def _template(factor: str, model_version: str, data: bytes, samples: int = 0) -> Template:
    return Template(factor=factor, model_version=model_version, arrays=dict(codec.decode(data).arrays), samples=samples)


def _enrol(conn, rt: Runtime, job: jobs.ClaimedJob, emb: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    p = rt.pipeline
    scores.lock_user_factor(conn, job.user_id, job.factor)
    scores.insert_enrolment_sample(
        conn, job_id=job.id, tenant_id=job.tenant_id, user_id=job.user_id, factor=job.factor,
        model_version=p.model_version, embeddings=_pack(job.factor, {"embeddings": emb}), samples=len(emb),
    )
    blobs = scores.enrolment_samples(conn, user_id=job.user_id, factor=job.factor, model_version=p.model_version)
    all_emb = np.concatenate([codec.decode(b).require("embeddings") for b in blobs])
    if len(all_emb) >= p.min_enrol_samples:
        template = p.enrol(all_emb)
        scores.upsert_template(
            conn, user_id=job.user_id, tenant_id=job.tenant_id, factor=job.factor,
            model_version=template.model_version, data=_pack(job.factor, template.arrays), samples=len(all_emb),
        )


def _verify(conn, rt: Runtime, job: jobs.ClaimedJob, emb: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    from core.errors import PermanentJobError

    p = rt.pipeline
    stored = scores.load_template(conn, user_id=job.user_id, factor=job.factor)
    if stored is None:
        raise PermanentJobError("the user has no template for this factor yet", code="not_enrolled")
    version, data = stored
    if version != p.model_version:
        raise PermanentJobError(f"template built by {version}, model is {p.model_version}", code="template_outdated")
    result = p.verify(_template(job.factor, version, data), emb)
    scores.insert_score(conn, scores.ScoreRow(
        job_id=job.id, tenant_id=job.tenant_id, user_id=job.user_id, factor=job.factor,
        score=float(result.score), distance=float(result.distance), llr=float(result.llr),
        decision=bool(result.score >= job.decision_threshold), samples=len(emb),
        model_version=p.model_version, captured_at=job.captured_to,
    ))


def _persist(conn, rt: Runtime, job: jobs.ClaimedJob, emb: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """The job's result and its end, in one transaction (which may hold other jobs' steps too)."""
    if job.purpose == "enrol":
        _enrol(conn, rt, job, emb)
    else:
        _verify(conn, rt, job, emb)
    if jobs.finish(conn, job.id):
        webhook_events.job_completed(conn, job_id=job.id, trust=rt.settings.trust)


def score_job(rt: Runtime, job_id: uuid.UUID) -> tuple[jobs.ClaimedJob | None, Verdict | None]:
    """Run one job to its end; returns the job and, on error, what to do about it."""
    job = rt.db.run(lambda conn: jobs.claim(conn, job_id), key=str(job_id))
    if job is None:
        return None, None  # finished before (a redelivery) or unknown
    observe.observe_claim(job.factor, job.queue_wait_s)
    t0 = time.monotonic()
    try:
        blob = rt.store.get(job.object_key)
        t_fetch = time.monotonic()
        plaintext = envelope.open_blob(job, blob)
        t_open = time.monotonic()
        x = rt.pipeline.preprocess(rt.pipeline.decode(plaintext))
        t_pre = time.monotonic()
        emb = rt.batcher.submit(x).result()
        t_model = time.monotonic()
        rt.db.run(lambda conn: _persist(conn, rt, job, emb), key=str(job.user_id))
        t_end = time.monotonic()
        stages = {"fetch": t_fetch - t0, "decrypt": t_open - t_fetch, "preprocess": t_pre - t_open,
                  "model": t_model - t_pre, "write": t_end - t_model}
        log.info(json.dumps({
            "event": "job_done", "job_id": str(job.id), "tenant_id": str(job.tenant_id), "factor": job.factor,
            "purpose": job.purpose, "rows": int(len(x)), **{f"{k}_ms": round(v * 1e3, 2) for k, v in stages.items()},
        }))
        observe.observe_done(job.factor, job.created_at, stages)
        return job, None
    except Exception as exc:  # noqa: BLE001 - every error is classified below
        verdict = classify(exc)
        log.warning(json.dumps({"event": "job_error", "job_id": str(job.id), "factor": job.factor,
                                "outcome": verdict.outcome, "code": verdict.code, "error_class": exc.__class__.__name__}))
        observe.observe_error(job.factor, verdict.outcome, job.attempts, rt.settings.reliability.max_attempts)
        return job, verdict
