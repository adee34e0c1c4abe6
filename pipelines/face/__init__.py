"""Face: a small CNN with LBP histograms, trained on the ORL / AT&T faces."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.face.pipeline import FacePipeline

WEIGHTS = Path(__file__).parent / "weights"

# The factor's registration constants (core/factors.py): kept light, the API reads them.
WIRE_CODE = 3
HALF_LIFE_S = 900.0  # chosen on subject folds by `tacit eval trust --folds 3` (docs/trust.md)
# A GPU pool that scales to zero: it wakes for a handful of jobs or a 30 s old one.
SCALING = {
    "list_length": 64,
    "activation_list_length": 8,
    "min_replicas": 0,
    "max_replicas": 16,
    "latency_objective_s": 120.0,
    "activation_age_s": 30.0,
    "jobs_per_s_target": 60.0,
}
CAPACITY = {
    "uploads_per_user_per_day": 6,
    "jobs_per_s_per_replica": 90,
    "service_latency_s": 0.2,
    "cold_start_s": 60,
    "bytes_per_upload": 60_000,
}
# bounds of the TACIT_PLAINTEXT__FACE_<LIMIT> settings (the pipeline's `limits` fields)
PLAINTEXT_BOUNDS = {
    "max_frames": (1, 64),
    "max_pixels": (256, None),
}  # pixels: all frames of a batch
# the pool pod's resources in the manifests `tacit deploy` writes (docker/templates)
RESOURCES = {"cpu_request": "1", "memory_request": "3Gi", "cpu_limit": "4", "memory_limit": "6Gi"}
BENCH = {"rows_per_job": 4, "max_batch": 64}


def load(device: str = "cpu", weights_dir: Path | None = None) -> FacePipeline:
    """The face pipeline with the committed weights (or those in `weights_dir`) on `device`."""
    from pipelines.face.model import FaceEncoder
    from pipelines.face.pipeline import FacePipeline, Scoring
    from pipelines.weights import load_weights

    encoder, calibration, meta = load_weights(
        weights_dir or WEIGHTS, lambda m: FaceEncoder(**m["encoder"])
    )
    return FacePipeline(
        encoder,
        calibration,
        Scoring(**meta["scoring"]),
        model_version=meta["model_version"],
        device=device,
    )
