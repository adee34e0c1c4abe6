"""Rows for tests that need a user's history without scoring models: written straight to Postgres."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from core.storage import ObjectStore
from core.users.service import get_or_create_user


@dataclass
class Row:
    user_id: uuid.UUID
    device_id: uuid.UUID
    batch_id: uuid.UUID
    job_id: uuid.UUID
    object_key: str


def device(db, tenant_id: uuid.UUID, user: str) -> tuple[uuid.UUID, uuid.UUID]:  # type: ignore[no-untyped-def]
    user_id = get_or_create_user(db, tenant_id=tenant_id, external_id=user)
    device_id = uuid.uuid4()
    db.execute(
        "INSERT INTO devices (id, tenant_id, user_id) VALUES (%s, %s, %s)",
        (device_id, tenant_id, user_id),
    )
    return user_id, device_id


def job(  # type: ignore[no-untyped-def]
    db,
    tenant_id: uuid.UUID,
    user: str,
    *,
    device_id: uuid.UUID | None = None,
    factor: str = "keystroke",
    purpose: str = "verify",
    status: str = "done",
    created_at: datetime | None = None,
    llr: float | None = None,
    score_age_s: float = 0.0,
    store: ObjectStore | None = None,
) -> Row:
    """A batch and its job (and a score when `llr` is given), optionally with the blob in `store`."""
    user_id = get_or_create_user(db, tenant_id=tenant_id, external_id=user)
    if device_id is None:
        _, device_id = device(db, tenant_id, user)
    batch_id, job_id = uuid.uuid4(), uuid.uuid4()
    key = f"raw/{tenant_id}/{device_id}/2025/01/01/{batch_id}"
    if store is not None:
        store.put(key, b"ciphertext of " + str(batch_id).encode())
    db.execute(
        "INSERT INTO batches (id, tenant_id, user_id, device_id, client_batch_id, factor, purpose, object_key,"
        " size_bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 10)",
        (batch_id, tenant_id, user_id, device_id, uuid.uuid4(), factor, purpose, key),
    )
    db.execute(
        "INSERT INTO jobs (id, batch_id, tenant_id, user_id, factor, purpose, status, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
        (job_id, batch_id, tenant_id, user_id, factor, purpose, status, created_at),
    )
    if llr is not None:
        db.execute(
            "INSERT INTO scores (job_id, tenant_id, user_id, factor, score, distance, llr, decision, samples,"
            " model_version, created_at) VALUES (%s, %s, %s, %s, %s, 0.1, %s, %s, 4, 'test-1',"
            " now() - make_interval(secs => %s))",
            (
                job_id,
                tenant_id,
                user_id,
                factor,
                1 / (1 + 2.718281828**-llr),
                llr,
                llr > 0,
                score_age_s,
            ),
        )
    return Row(user_id, device_id, batch_id, job_id, key)
