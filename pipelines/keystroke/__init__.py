"""Keystroke dynamics: fixed-phrase typing rhythm (CMU benchmark model)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.keystroke.pipeline import KeystrokePipeline

WEIGHTS = Path(__file__).parent / "weights"

# The factor's registration constants (core/factors.py): kept light, the API reads them.
WIRE_CODE = 1
# trust: chosen on subject folds by `tacit eval trust --folds 3` (docs/trust.md)
HALF_LIFE_S = 1800.0
# Cheap scoring on CPUs: one warm replica and a deeper queue per replica.
SCALING = {
    "list_length": 256,
    "activation_list_length": 0,
    "min_replicas": 1,
    "max_replicas": 8,
    "latency_objective_s": 60.0,
    "activation_age_s": 10.0,
    "jobs_per_s_target": 150.0,
}
CAPACITY = {
    "uploads_per_user_per_day": 48,
    "jobs_per_s_per_replica": 214,
    "service_latency_s": 0.05,
    "cold_start_s": 5,
    "bytes_per_upload": 3_000,
}
# bounds of the TACIT_PLAINTEXT__KEYSTROKE_<LIMIT> settings (the pipeline's `limits` fields)
PLAINTEXT_BOUNDS = {"max_events": (1, 100_000)}
# the pool pod's resources in the manifests `tacit deploy` writes (docker/templates)
RESOURCES = {
    "cpu_request": "500m",
    "memory_request": "1Gi",
    "cpu_limit": "2",
    "memory_limit": "2Gi",
}
BENCH = {"rows_per_job": 5, "max_batch": 256}


def load(device: str = "cpu", weights_dir: Path | None = None) -> KeystrokePipeline:
    """The keystroke pipeline with the committed weights (or those in `weights_dir`) on `device`."""
    from pipelines.keystroke.model import KeystrokeEncoder
    from pipelines.keystroke.pipeline import KeystrokePipeline, Scoring
    from pipelines.weights import load_weights

    encoder, calibration, meta = load_weights(
        weights_dir or WEIGHTS, lambda m: KeystrokeEncoder(**m["encoder"])
    )
    return KeystrokePipeline(
        encoder,
        calibration,
        Scoring(**meta["scoring"]),
        model_version=meta["model_version"],
        device=device,
    )
