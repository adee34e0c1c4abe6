"""What a worker process holds for its life: settings, pools, the pipeline and its embedder.

Built once before the worker takes jobs (model loaded and warmed up), in the
process that uses it: CUDA is never initialised before a fork.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg_pool import ConnectionPool

from core.db import make_pool
from core.factors import load_pipeline
from core.settings import Settings
from core.storage import ObjectStore, make_store
from pipelines.base import FactorPipeline
from workers.embedding import Embedder, local_batcher, oip_batcher
from workers.group_commit import GroupCommit, GroupStats
from workers.model_server import AUTHKEY_ENV, MODEL_SOCKET_ENV, RemoteModel
from workers.opening import KeyFile

log = logging.getLogger("tacit.worker")


@dataclass
class Runtime:
    """One factor's pool process: where jobs are read and written, and how rows are embedded."""

    factor: str
    settings: Settings
    pool: ConnectionPool  # the worker's Postgres connections
    store: ObjectStore
    pipeline: FactorPipeline
    embedder: Embedder  # the model here, in the pool's model process, or in an inference server
    commits: GroupCommit  # claims and results, many jobs' per transaction
    keys: KeyFile  # the server's private keys, to open stored envelopes

    def close(self) -> None:
        self.embedder.close()
        self.commits.close()
        self.pool.close()


_runtime: Runtime | None = None


def log_group(factor: str, stats: GroupStats) -> None:
    # DEBUG: a line per transaction costs more than the group commit saves at INFO volume
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            json.dumps(
                {
                    "event": "commit",
                    "factor": factor,
                    "steps": stats.steps,
                    "commit_ms": round(stats.seconds * 1e3, 2),
                    "one_by_one": stats.alone,
                }
            )
        )


def apply_plaintext_limits(pipeline: FactorPipeline, settings: Settings) -> None:
    """Give the pipeline its factor's maxima from settings (``plaintext.<factor>_<field>``).

    A pipeline without a ``limits`` dataclass (a third-party factor) keeps its own.
    """
    limits = getattr(pipeline, "limits", None)
    if limits is None or not dataclasses.is_dataclass(limits):
        return
    prefix = f"{pipeline.factor}_"
    names = {f.name for f in dataclasses.fields(limits)}
    update = {
        k[len(prefix) :]: v
        for k, v in settings.plaintext.model_dump().items()
        if k.startswith(prefix) and k[len(prefix) :] in names
    }
    pipeline.limits = dataclasses.replace(limits, **update)  # type: ignore[attr-defined, type-var]


def _embedder(pipeline: FactorPipeline, settings: Settings, device: str) -> tuple[Embedder, str]:
    """The embedder this process uses, and where its model runs."""
    socket_path = os.environ.get(MODEL_SOCKET_ENV)
    if socket_path:
        # The pool's model process owns the device; this process only does CPU work.
        remote = RemoteModel(Path(socket_path), bytes.fromhex(os.environ[AUTHKEY_ENV]))
        return remote, f"remote:{socket_path}"
    if settings.pool.backend == "oip":
        return oip_batcher(pipeline.factor, settings, pipeline), f"oip:{settings.pool.oip_url}"
    batcher = local_batcher(
        pipeline,
        device,
        max_batch=settings.pool.max_batch,
        max_wait_s=settings.pool.max_wait_ms / 1e3,
        name=f"batcher-{pipeline.factor}",
    )
    return batcher, device


def init(factor: str, settings: Settings, *, device: str | None = None) -> Runtime:
    """Load and warm the factor's pipeline, open pools, start the embedder."""
    global _runtime
    t0 = time.monotonic()
    device = device or settings.pool.device
    model_elsewhere = bool(os.environ.get(MODEL_SOCKET_ENV)) or settings.pool.backend == "oip"
    pipeline = load_pipeline(factor, device="cpu" if model_elsewhere else device)
    apply_plaintext_limits(pipeline, settings)
    embedder, where = _embedder(pipeline, settings, device)
    pool = make_pool(
        settings.database_url,
        min_size=1,
        max_size=max(4, settings.pool.threads // 4),
        name=f"worker-{factor}",
        durable_commits=False,
    )
    pool.open(wait=False)
    _runtime = Runtime(
        factor,
        settings,
        pool,
        make_store(settings.storage),
        pipeline,
        embedder,
        commits=GroupCommit(pool, on_group=lambda s: log_group(factor, s), name=f"commit-{factor}"),
        keys=KeyFile(settings.crypto.private_keys_file),
    )
    log.info(
        json.dumps(
            {
                "event": "worker_ready",
                "factor": factor,
                "device": where,
                "model_version": pipeline.model_version,
                "load_s": round(time.monotonic() - t0, 2),
            }
        )
    )
    return _runtime


def get() -> Runtime:
    if _runtime is None:
        raise RuntimeError("worker runtime not initialised; start with `tacit worker --factor F`")
    return _runtime
