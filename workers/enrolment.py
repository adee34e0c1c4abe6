"""Enrolling in the worker: the sample with its provenance, the consistency gate, rebuilds.

Every step here runs under the user's and factor's advisory lock, in the transaction that
also ends the job, so two batches of one user never build a template from different sets.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np

from core.db import DictConnection
from core.enrolment import templates
from core.errors import PermanentJobError
from core.jobs import repository as jobs
from core.scores import repository as scores
from core.webhooks import events as webhook_events
from pipelines import codec
from pipelines.base import FactorPipeline, Template


def pack(factor: str, arrays: dict[str, np.ndarray]) -> bytes:
    return codec.encode(factor, arrays, schema=1)


def unpack_template(factor: str, model_version: str, data: bytes) -> Template:
    return Template(
        factor=factor,
        model_version=model_version,
        arrays=dict(codec.decode(data).arrays),
        samples=0,
    )


def check_device_active(conn: DictConnection, device_id: uuid.UUID) -> None:
    """Refuse a revoked device's sample. FOR SHARE: a revocation committing meanwhile either
    waits for this transaction (and then removes the sample) or is seen here."""
    row = conn.execute(
        "SELECT status FROM devices WHERE id = %s FOR SHARE", (device_id,)
    ).fetchone()
    if row is None or row["status"] != "active":
        raise PermanentJobError(
            "the device was revoked before its batch was enrolled", code="device_revoked"
        )


def enrol(
    conn: DictConnection,
    p: FactorPipeline,
    job: jobs.ClaimedJob,
    emb: np.ndarray,
    *,
    held_ttl_s: float,
    max_samples: int,
) -> str:
    """Add the job's embeddings to the user's enrolment set; 'merged' or 'held'.

    Held: the user has a template of this model version and the batch scores below the
    tenant's operating point against it, so it is kept aside for the tenant to accept
    (``accept-held``) or to expire. A `replace` window starts the profile afresh instead.
    """
    scores.lock_user_factor(conn, job.user_id, job.factor)
    check_device_active(conn, job.device_id)
    held = False
    if job.replace and job.enrolment_id is not None:
        templates.drop_samples_outside(
            conn, user_id=job.user_id, factor=job.factor, enrolment_id=job.enrolment_id
        )
    else:
        stored = templates.load_template(conn, user_id=job.user_id, factor=job.factor)
        if stored is not None and stored[0] == p.model_version:
            result = p.verify(unpack_template(job.factor, stored[0], stored[1]), emb)
            held = float(result.score) < job.decision_threshold
    assert job.batch_id is not None
    templates.insert_sample(
        conn,
        templates.SampleRow(
            job.id,
            job.tenant_id,
            job.user_id,
            job.factor,
            p.model_version,
            pack(job.factor, {"embeddings": emb}),
            len(emb),
            job.device_id,
            job.batch_id,
            job.enrolment_id,
            held_for=timedelta(seconds=held_ttl_s) if held else None,
        ),
    )
    if held:
        return "held"
    rebuild(
        conn,
        p,
        user_id=job.user_id,
        tenant_id=job.tenant_id,
        factor=job.factor,
        reason="enrolled",
        max_samples=max_samples,
    )
    return "merged"


def rebuild(
    conn: DictConnection,
    p: FactorPipeline,
    *,
    user_id: uuid.UUID,
    tenant_id: uuid.UUID,
    factor: str,
    reason: str,
    max_samples: int,
) -> int | None:
    """Rebuild the template from the active samples of the current model version; its new version.

    With too few samples for a template there is none (a revocation took them): an existing
    one is emptied, its version still counted. The caller holds the user's and factor's lock.
    """
    templates.drop_beyond_newest(
        conn, user_id=user_id, factor=factor, model_version=p.model_version, keep=max_samples
    )
    rows = templates.active_samples(
        conn, user_id=user_id, factor=factor, model_version=p.model_version, limit=max_samples
    )
    all_emb = (
        np.concatenate([codec.decode(b).require("embeddings") for b, _ in rows])
        if rows
        else np.zeros((0,))
    )
    devices = sorted({d for _, d in rows if d is not None}, key=str)
    if len(all_emb) >= p.min_enrol_samples:
        template = p.enrol(all_emb)
        version = templates.save_template(
            conn,
            user_id=user_id,
            tenant_id=tenant_id,
            factor=factor,
            model_version=template.model_version,
            data=pack(factor, template.arrays),
            samples=len(all_emb),
        )
    else:
        emptied = templates.drop_template(conn, user_id=user_id, factor=factor)
        if emptied is None:
            return None  # no template before, none now: nothing changed
        version = emptied
    webhook_events.template_changed(
        conn,
        tenant_id=tenant_id,
        user_id=user_id,
        factor=factor,
        version=version,
        model_version=p.model_version,
        samples=len(all_emb),
        devices=devices,
        reason=reason,
    )
    return version


def rebuild_owed(
    conn: DictConnection,
    p: FactorPipeline,
    *,
    user_id: uuid.UUID,
    factor: str,
    max_samples: int,
    reembedded: int | None = None,
) -> bool:
    """Do the rebuild owed for the user's factor from the samples there are; False when none was owed.

    A re-embedding is owed until its samples have been re-embedded (`reembedded`: how many
    were); a template already of the current model version with nothing re-embedded is left
    as it is, so running the same re-embedding twice changes nothing.
    """
    scores.lock_user_factor(conn, user_id, factor)
    owed = templates.owed_rebuild(conn, user_id=user_id, factor=factor)
    if owed is None or (owed["reembed"] and reembedded is None):
        return False
    row = conn.execute(
        "SELECT u.tenant_id, t.model_version, t.samples FROM users u"
        " LEFT JOIN templates t ON t.user_id = u.id AND t.factor = %s WHERE u.id = %s",
        (factor, user_id),
    ).fetchone()
    current = row is not None and row["model_version"] == p.model_version and row["samples"]
    if row is not None and not (owed["reembed"] and current and not reembedded):
        rebuild(
            conn,
            p,
            user_id=user_id,
            tenant_id=row["tenant_id"],
            factor=factor,
            reason=owed["reason"],
            max_samples=max_samples,
        )
    templates.rebuild_done(conn, user_id=user_id, factor=factor, requested_at=owed["requested_at"])
    return True


def run_owed(rt, user_id: uuid.UUID, factor: str) -> bool:  # type: ignore[no-untyped-def]
    """The rebuild owed for the user's factor, in the pool's group commit; False when none was owed.

    A re-embedding first embeds each stored enrolment batch again with this pool's model,
    one sample per transaction, so an interrupted run resumes where it stopped.
    """
    max_samples = rt.settings.enrolment.max_samples
    owed = rt.commits.run(
        lambda conn: templates.owed_rebuild(conn, user_id=user_id, factor=factor), key=str(user_id)
    )
    if owed is None:
        return False
    reembedded = None
    if owed["reembed"]:
        from workers.reembed import reembed_samples

        reembedded = reembed_samples(rt, user_id, factor)
    return bool(
        rt.commits.run(
            lambda conn: rebuild_owed(
                conn,
                rt.pipeline,
                user_id=user_id,
                factor=factor,
                max_samples=max_samples,
                reembedded=reembedded,
            ),
            key=str(user_id),
        )
    )
