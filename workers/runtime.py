"""What a worker process holds for its life: settings, pools, the pipeline and its batcher.

Built once before the worker takes jobs (model loaded and warmed up), in the
process that uses it: CUDA is never initialised before a fork.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from psycopg_pool import ConnectionPool

from core import factors
from core.db import make_pool
from core.settings import Settings
from core.storage import ObjectStore, make_store
from pipelines.base import FactorPipeline
from workers import metrics
from workers.batcher import BatchStats, DynamicBatcher
from workers.group_commit import GroupCommit, GroupStats

log = logging.getLogger("tacit.worker")


@dataclass
class Runtime:
    factor: str
    settings: Settings
    pool: ConnectionPool
    store: ObjectStore
    pipeline: FactorPipeline
    batcher: Embedder
    db: GroupCommit

    def close(self) -> None:
        self.batcher.close()
        self.db.close()
        self.pool.close()


_runtime: Runtime | None = None


class Embedder(Protocol):
    """A local DynamicBatcher, or the socket to the pool's model process."""

    def submit(self, x: np.ndarray) -> Future[np.ndarray]: ...

    def close(self) -> None: ...


def log_batch(factor: str, stats: BatchStats) -> None:
    metrics.observe_batch(factor, stats.jobs, stats.rows)
    log.info(
        json.dumps(
            {
                "event": "batch",
                "factor": factor,
                "jobs": stats.jobs,
                "rows": stats.rows,
                "wait_ms": round(stats.wait_s * 1e3, 2),
                "model_ms": round(stats.model_s * 1e3, 2),
            }
        )
    )


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


def make_embed(pipeline: FactorPipeline, device: str):  # type: ignore[no-untyped-def]
    """numpy rows in, numpy embeddings out, through the model on `device`."""
    import torch

    pin = device.startswith("cuda")

    def run(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if pin:
            t = t.pin_memory()
        with torch.inference_mode():
            out = pipeline.embed(t.to(device, non_blocking=pin))
        return out.detach().float().cpu().numpy()

    return run


def warm_up(pipeline: FactorPipeline, embed, max_batch: int) -> None:  # type: ignore[no-untyped-def]
    """Run the model once at batch 1 and once full, so the first jobs pay no start-up cost.

    The inputs come from the factor's ``synthetic`` module; a factor without one starts cold.
    """
    if pipeline.factor not in factors.providing("synthetic"):
        log.info("%s ships no synthetic module: the pool starts without a warm-up", pipeline.factor)
        return
    synth = factors.get(pipeline.factor).submodule("synthetic")
    rng = np.random.default_rng(0)
    x = pipeline.preprocess(pipeline.decode(synth.capture(synth.make_person(0), rng, 2)))
    embed(x[:1])
    embed(np.concatenate([x] * (max_batch // len(x) + 1))[:max_batch])


def remote_batcher(factor: str, settings: Settings, pipeline: FactorPipeline) -> DynamicBatcher:
    """A dynamic batcher whose model is an OIP inference server: one request per batch.

    Refuses to start (``oip.ModelMismatch``) unless the server holds this pipeline's model
    version; the pool's /readyz then reports the server's readiness.
    """
    from workers import oip

    if not settings.pool.oip_url:
        raise oip.ModelMismatch(
            "TACIT_POOL__BACKEND=oip needs TACIT_POOL__OIP_URL (http://host:port or grpc://host:port)"
        )
    client = oip.connect(
        settings.pool.oip_url,
        settings.pool.oip_model or factor,
        timeout_s=settings.pool.oip_timeout_s,
    )
    oip.check_model(client, model_version=pipeline.model_version)

    def server_ready() -> dict[str, object]:
        try:
            ready = client.describe().ready
        except oip.ModelServerUnavailable:
            ready = False
        return {
            "ready": ready,
            "model_server": {"url": client.url, "model": client.model, "ready": ready},
        }

    metrics.set_readiness(server_ready)
    return DynamicBatcher(
        client.infer,
        max_batch=settings.pool.max_batch,
        max_wait_s=settings.pool.max_wait_ms / 1e3,
        on_batch=lambda s: log_batch(factor, s),
        name=f"batcher-{factor}",
        on_close=client.close,
    )


def apply_plaintext_limits(pipeline: FactorPipeline, settings: Settings) -> None:
    """Give the pipeline its factor's maxima from settings (``plaintext.<factor>_<field>``).

    A pipeline without a ``limits`` dataclass (a third-party factor) keeps its own.
    """
    import dataclasses

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


def init(factor: str, settings: Settings, *, device: str | None = None) -> Runtime:
    """Load and warm the factor's pipeline, open pools, start the batcher."""
    global _runtime
    from core.factors import load_pipeline

    device = device or settings.pool.device
    t0 = time.monotonic()
    socket_path = os.environ.get("TACIT_MODEL_SOCKET")
    batcher: Embedder
    if socket_path:
        # The pool's model process owns the device; this process only does CPU work.
        from workers.model_server import AUTHKEY_ENV, RemoteModel

        pipeline = load_pipeline(factor, device="cpu")
        apply_plaintext_limits(pipeline, settings)
        batcher = RemoteModel(Path(socket_path), bytes.fromhex(os.environ[AUTHKEY_ENV]))
        device = f"remote:{socket_path}"
    elif settings.pool.backend == "oip":
        pipeline = load_pipeline(factor, device="cpu")
        apply_plaintext_limits(pipeline, settings)
        batcher = remote_batcher(factor, settings, pipeline)
        device = f"oip:{settings.pool.oip_url}"
    else:
        pipeline = load_pipeline(factor, device=device)
        apply_plaintext_limits(pipeline, settings)
        embed = make_embed(pipeline, device)
        warm_up(pipeline, embed, settings.pool.max_batch)
        batcher = DynamicBatcher(
            embed,
            max_batch=settings.pool.max_batch,
            max_wait_s=settings.pool.max_wait_ms / 1e3,
            on_batch=lambda s: log_batch(factor, s),
            name=f"batcher-{factor}",
        )
    pool = make_pool(
        settings.database_url,
        min_size=1,
        max_size=max(4, settings.pool.threads // 4),
        name=f"worker-{factor}",
        durable_commits=False,
    )
    pool.open(wait=False)
    db = GroupCommit(pool, on_group=lambda s: log_group(factor, s), name=f"commit-{factor}")
    _runtime = Runtime(factor, settings, pool, make_store(settings.storage), pipeline, batcher, db)
    log.info(
        json.dumps(
            {
                "event": "worker_ready",
                "factor": factor,
                "device": device,
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
