"""Re-embedding stored enrolment batches with the pool's current model (after a model upgrade).

The ciphertext of every enrolment batch stays in the object store as long as its sample
does, so a new model version needs no new enrolment: each batch is fetched, opened and
embedded again, exactly as when it was first enrolled.
"""

from __future__ import annotations

import json
import logging
import uuid

from core.enrolment import templates
from core.errors import Unavailable
from core.jobs.endings import Retry
from core.jobs.repository import ClaimedJob
from workers import opening
from workers.enrolment import pack
from workers.errors import classify

log = logging.getLogger("tacit.worker")


def _as_job(s: templates.StoredSample) -> ClaimedJob:
    """What opening a stored envelope needs to know of its job."""
    return ClaimedJob(
        s.job_id,
        s.tenant_id,
        s.user_id,
        s.device_id,
        s.factor,
        "enrol",
        0,
        s.object_key,
        s.key_id,
        s.client_batch_id,
        s.created_at,
        None,
        0.5,
        0.0,
    )


def reembed_samples(rt, user_id: uuid.UUID, factor: str) -> int:  # type: ignore[no-untyped-def]
    """Embed the user's outdated samples of `factor` again; how many were. Transient errors raise
    (the task retries and resumes); a batch that can no longer be opened is skipped and its
    sample no longer counts (it stays of the old model version)."""
    p = rt.pipeline
    stale = rt.commits.run(
        lambda conn: templates.outdated_samples(
            conn, user_id=user_id, factor=factor, model_version=p.model_version
        ),
        key=str(user_id),
    )
    done = 0
    for s in stale:
        try:
            plaintext = opening.open_blob(_as_job(s), rt.store.get(s.object_key), rt.keys)
            emb = rt.embedder.submit(p.preprocess(p.decode(plaintext))).result()
        except Exception as exc:  # noqa: BLE001 - classified: transient ones retry the task
            ending = classify(exc)
            if isinstance(ending, Retry):
                raise Unavailable(ending.message, code=ending.code) from exc
            log.warning(
                json.dumps(
                    {"event": "reembed_skipped", "job_id": str(s.job_id), "code": ending.code}
                )
            )
            continue
        packed, n = pack(factor, {"embeddings": emb}), len(emb)
        rt.commits.run(
            lambda conn, s=s, packed=packed, n=n: templates.replace_embeddings(
                conn,
                job_id=s.job_id,
                old_version=s.model_version,
                model_version=p.model_version,
                embeddings=packed,
                samples=n,
            ),
            key=str(user_id),
        )
        done += 1
    return done
