"""What a worker process holds for its life: settings, pools, the pipeline and its batcher.

Built once before the worker takes jobs (model loaded and warmed up), in the
process that uses it: CUDA is never initialised before a fork.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np
from psycopg_pool import ConnectionPool

from core.db import make_pool
from core.settings import Settings
from core.storage import ObjectStore, make_store
from pipelines.base import FactorPipeline
from workers.batcher import BatchStats, DynamicBatcher

log = logging.getLogger("tacit.worker")


@dataclass
class Runtime:
    factor: str
    settings: Settings
    pool: ConnectionPool
    store: ObjectStore
    pipeline: FactorPipeline
    batcher: DynamicBatcher

    def close(self) -> None:
        self.batcher.close()
        self.pool.close()


_runtime: Runtime | None = None


def _log_batch(factor: str, stats: BatchStats) -> None:
    log.info(json.dumps({"event": "batch", "factor": factor, "jobs": stats.jobs, "rows": stats.rows,
                         "wait_ms": round(stats.wait_s * 1e3, 2), "model_ms": round(stats.model_s * 1e3, 2)}))


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


def init(factor: str, settings: Settings, *, device: str | None = None) -> Runtime:
    """Load and warm the factor's pipeline, open pools, start the batcher."""
    global _runtime
    from pipelines.registry import load_pipeline

    device = device or settings.pool.device
    t0 = time.monotonic()
    pipeline = load_pipeline(factor, device=device)
    embed = make_embed(pipeline, device)
    batcher = DynamicBatcher(
        embed,
        max_batch=settings.pool.max_batch,
        max_wait_s=settings.pool.max_wait_ms / 1e3,
        on_batch=lambda s: _log_batch(factor, s),
        name=f"batcher-{factor}",
    )
    pool = make_pool(settings.database_url, min_size=1, max_size=max(4, settings.pool.threads // 2), name=f"worker-{factor}")
    pool.open(wait=False)
    _runtime = Runtime(factor, settings, pool, make_store(settings.storage), pipeline, batcher)
    log.info(json.dumps({"event": "worker_ready", "factor": factor, "device": device,
                         "model_version": pipeline.model_version, "load_s": round(time.monotonic() - t0, 2)}))
    return _runtime


def get() -> Runtime:
    if _runtime is None:
        raise RuntimeError("worker runtime not initialised; start with `tacit worker --factor F`")
    return _runtime
