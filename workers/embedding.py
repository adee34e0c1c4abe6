"""Where a pool's embeddings come from: the model on a device, or an inference server.

Both a worker process (``workers/runtime.py``) and the model process of a multi-process
pool (``workers/model_server.py``) build their embedder here, so neither imports the other.
An embedder takes a job's preprocessed rows and returns a future of its embeddings:
a local ``DynamicBatcher`` around the model, one whose model is an OIP server
(``oip_batcher``), or the socket to the pool's model process (``model_server.RemoteModel``).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future
from typing import Protocol

import numpy as np

from core import factors
from core.settings import Settings
from pipelines.base import FactorPipeline
from workers import metrics, oip
from workers.batcher import BatchStats, DynamicBatcher, RunFn

log = logging.getLogger("tacit.worker")


class Embedder(Protocol):
    """A local DynamicBatcher, one around an inference server, or the socket to the model process."""

    def submit(self, x: np.ndarray) -> Future[np.ndarray]: ...

    def close(self) -> None: ...


def log_batch(factor: str, stats: BatchStats) -> None:
    """One JSON line and the batch-size histogram per forward pass."""
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


def make_embed(pipeline: FactorPipeline, device: str) -> RunFn:
    """numpy rows in, numpy embeddings out, through the model on `device`."""
    # torch only here: a pool whose model is an inference server never loads it for this
    import torch

    pin = device.startswith("cuda")

    def run(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        # the pipeline's embed moves the batch to its device under inference_mode (pipelines/base.py)
        out = pipeline.embed(t.pin_memory() if pin else t)
        return out.detach().float().cpu().numpy()  # type: ignore[no-any-return]

    return run


def warm_up(pipeline: FactorPipeline, embed: RunFn, max_batch: int) -> bool:
    """Run the model once at batch 1 and once full, so the first jobs pay no start-up cost.

    The inputs come from the factor's synthetic generator; a factor that ships none (a
    plug-in may not) starts cold. Returns whether the model was warmed.
    """
    spec = factors.get(pipeline.factor)
    if not spec.provides("synthetic"):
        log.info(json.dumps({"event": "warm_up_skipped", "factor": pipeline.factor}))
        return False
    synth = spec.submodule("synthetic")
    rng = np.random.default_rng(0)
    x = pipeline.preprocess(pipeline.decode(synth.capture(synth.make_person(0), rng, 2)))
    embed(x[:1])
    embed(np.concatenate([x] * (max_batch // len(x) + 1))[:max_batch])
    return True


def local_batcher(
    pipeline: FactorPipeline, device: str, *, max_batch: int, max_wait_s: float, name: str
) -> DynamicBatcher:
    """The pipeline's model on `device`, warmed up, behind a dynamic batcher."""
    embed = make_embed(pipeline, device)
    warm_up(pipeline, embed, max_batch)
    return DynamicBatcher(
        embed,
        max_batch=max_batch,
        max_wait_s=max_wait_s,
        on_batch=lambda s: log_batch(pipeline.factor, s),
        name=name,
    )


def oip_batcher(factor: str, settings: Settings, pipeline: FactorPipeline) -> DynamicBatcher:
    """A dynamic batcher whose model is an OIP inference server: one request per batch.

    Refuses to start (``oip.ModelMismatch``) unless the server holds this pipeline's model
    version; the pool's /readyz then reports the server's readiness.
    """
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
        except oip.InferenceServerUnavailable:
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
