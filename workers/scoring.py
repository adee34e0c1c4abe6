"""Scoring one job: load by id, fetch, open, decode, embed (batched), compare, persist."""

from __future__ import annotations

import json
import logging
import time
import uuid

import numpy as np

from core.enrolment import templates
from core.errors import PermanentJobError, TransientJobError
from core.jobs import endings
from core.jobs import repository as jobs
from core.scores import repository as scores
from workers import enrolment, opening
from workers import metrics as observe
from workers.errors import classify
from workers.runtime import Runtime

log = logging.getLogger("tacit.worker")


def _enrol(conn, rt: Runtime, job: jobs.ClaimedJob, emb: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    cfg = rt.settings.enrolment
    enrolment.enrol(
        conn, rt.pipeline, job, emb, held_ttl_s=cfg.held_ttl_s, max_samples=cfg.max_samples
    )


def _verify(conn, rt: Runtime, job: jobs.ClaimedJob, emb: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    p = rt.pipeline
    stored = templates.load_template(conn, user_id=job.user_id, factor=job.factor)
    if (
        stored is not None and stored[2] == "rebuild"
    ):  # a revocation took samples out: rebuild before comparing
        enrolment.rebuild_owed(
            conn,
            p,
            user_id=job.user_id,
            factor=job.factor,
            max_samples=rt.settings.enrolment.max_samples,
        )
        stored = templates.load_template(conn, user_id=job.user_id, factor=job.factor)
    if stored is None:
        raise PermanentJobError("the user has no template for this factor yet", code="not_enrolled")
    version, data, owed = stored
    if version != p.model_version and owed == "reembed":  # `tacit templates rebuild` is under way
        raise TransientJobError(
            "the template is being re-embedded for the new model", code="template_rebuilding"
        )
    # the pipeline refuses a template of another model version (`template_model_mismatch`)
    result = p.verify(enrolment.unpack_template(job.factor, version, data), emb)
    scores.insert_score(
        conn,
        scores.ScoreRow(
            job_id=job.id,
            tenant_id=job.tenant_id,
            user_id=job.user_id,
            factor=job.factor,
            score=float(result.score),
            distance=float(result.distance),
            llr=float(result.llr),
            decision=bool(result.score >= job.decision_threshold),
            samples=len(emb),
            model_version=p.model_version,
            captured_at=job.captured_to,
        ),
    )


def _persist(conn, rt: Runtime, job: jobs.ClaimedJob, emb: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """The job's result and its end, in one transaction (which may hold other jobs' steps too)."""
    if job.purpose == "enrol":
        _enrol(conn, rt, job, emb)
    else:
        _verify(conn, rt, job, emb)
    endings.done(conn, job.id, trust=rt.settings.trust)


def _run(rt: Runtime, job: jobs.ClaimedJob) -> tuple[int, dict[str, float]]:
    """Fetch, open, decode, embed and persist one claimed job; its rows and stage seconds."""
    t0 = time.monotonic()
    blob = rt.store.get(job.object_key)
    t_fetch = time.monotonic()
    plaintext = opening.open_blob(job, blob, rt.keys)
    t_open = time.monotonic()
    x = rt.pipeline.preprocess(rt.pipeline.decode(plaintext))
    t_pre = time.monotonic()
    emb = rt.embedder.submit(x).result()
    t_model = time.monotonic()
    rt.commits.run(lambda conn: _persist(conn, rt, job, emb), key=str(job.user_id))
    stages = {
        "fetch": t_fetch - t0,
        "decrypt": t_open - t_fetch,
        "preprocess": t_pre - t_open,
        "model": t_model - t_pre,
        "write": time.monotonic() - t_model,
    }
    return int(len(x)), stages


def _log(level: int, event: str, job: jobs.ClaimedJob, **fields: object) -> None:
    log.log(level, json.dumps({"event": event, "job_id": str(job.id), **fields}))


def score_job(
    rt: Runtime, job_id: uuid.UUID
) -> tuple[jobs.ClaimedJob | None, endings.Ending | None]:
    """Run one job; returns the job and, unless it succeeded, how it ended."""
    job = rt.commits.run(lambda conn: endings.claim(conn, job_id), key=str(job_id))
    if job is None:
        return None, None  # finished before (a redelivery) or unknown
    observe.observe_claim(job.factor, job.queue_wait_s)
    if job.device_status != "active":  # revoked while its job waited: never scored
        return job, endings.Fail(
            "device_revoked", "the device was revoked before its batch was scored"
        )
    try:
        rows, stages = _run(rt, job)
    except Exception as exc:  # noqa: BLE001 - every error is classified
        ending = classify(
            exc, attempts=job.attempts, max_attempts=rt.settings.reliability.max_attempts
        )
        _log(
            logging.WARNING,
            "job_error",
            job,
            factor=job.factor,
            outcome=ending.outcome,
            code=ending.code,
            error_class=exc.__class__.__name__,
        )
        observe.observe_error(job.factor, ending.outcome)
        return job, ending
    _log(
        logging.INFO,
        "job_done",
        job,
        tenant_id=str(job.tenant_id),
        factor=job.factor,
        purpose=job.purpose,
        rows=rows,
        **{f"{k}_ms": round(v * 1e3, 2) for k, v in stages.items()},
    )
    observe.observe_done(job.factor, job.created_at, stages)
    return job, None
