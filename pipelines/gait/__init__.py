"""Gait factor: walking motion (accelerometer + gyroscope) -> calibrated verification.

``load(device)`` returns the pipeline with the weights committed in ``weights/``
(trained on UCI HAPT; non-commercial use only).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.gait.pipeline import GaitPipeline

WEIGHTS = Path(__file__).parent / "weights"

# The factor's registration constants (core/factors.py): kept light, the API reads them.
WIRE_CODE = 2
HALF_LIFE_S = 60.0  # chosen on subject folds by `tacit eval trust --folds 3` (docs/trust.md)
# A GPU pool that scales to zero: it wakes for 16 jobs or a minute-old one.
SCALING = {
    "list_length": 128,
    "activation_list_length": 16,
    "min_replicas": 0,
    "max_replicas": 8,
    "latency_objective_s": 300.0,
    "activation_age_s": 60.0,
    "jobs_per_s_target": 120.0,
}
CAPACITY = {
    "uploads_per_user_per_day": 24,
    "jobs_per_s_per_replica": 182,
    "service_latency_s": 0.15,
    "cold_start_s": 60,
    "bytes_per_upload": 110_000,
}
# bounds of the TACIT_PLAINTEXT__GAIT_<LIMIT> settings (the pipeline's `limits` fields)
PLAINTEXT_BOUNDS = {"max_windows": (1, 1024)}  # 1000 Hz: ~70 MB a job
# the pool pod's resources in the manifests `tacit deploy` writes (docker/templates)
RESOURCES = {"cpu_request": "1", "memory_request": "2Gi", "cpu_limit": "2", "memory_limit": "4Gi"}
BENCH = {"rows_per_job": 32, "max_batch": 256}


def load(device: str = "cpu", weights_dir: Path | None = None) -> GaitPipeline:
    """The gait pipeline with the committed weights (or those in `weights_dir`) on `device`.

    ``calibration.json`` holds the model's shape, the calibration (slope, intercept, rho)
    and the scoring's ``top_k``.
    """
    from pipelines.gait.model import GaitEncoder
    from pipelines.gait.pipeline import GaitPipeline
    from pipelines.weights import load_weights

    model, calibration, meta = load_weights(
        weights_dir or WEIGHTS,
        lambda m: GaitEncoder(width=int(m.get("width", 32)), dim=int(m.get("embedding_dim", 128))),
    )
    if not math.isfinite(calibration.slope):
        raise ValueError("calibration slope is not finite")
    return GaitPipeline(
        model, calibration, str(meta["model_version"]), device, top_k=int(meta["top_k"])
    )
