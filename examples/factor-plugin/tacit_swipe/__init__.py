"""Swipe gestures: how a person swipes up to unlock (path, speed profile, timing).

A Tacit factor plug-in. Tacit's registry imports this module to read the constants
below, so it stays light: no torch, no weights until a pool calls `load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tacit_swipe.pipeline import SwipePipeline

WEIGHTS = Path(__file__).parent / "weights"

# The envelope's factor byte: 128-255 are for a deployment's own plug-ins. Phones send
# it in every upload, so it never changes once devices upload.
WIRE_CODE = 200
# A swipe is sparse evidence (one per unlock): it fades slower than typing rhythm.
HALF_LIFE_S = 300.0
# A CPU pool: cheap scoring, one warm replica, a deep queue per replica.
SCALING = {
    "list_length": 256,
    "activation_list_length": 0,
    "min_replicas": 1,
    "max_replicas": 4,
    "latency_objective_s": 60.0,
    "activation_age_s": 10.0,
    "jobs_per_s_target": 200.0,
}
CAPACITY = {
    "uploads_per_user_per_day": 24,
    "jobs_per_s_per_replica": 280,
    "service_latency_s": 0.02,
    "cold_start_s": 5,
    "bytes_per_upload": 2_000,
}
# bounds of the TACIT_PLAINTEXT__SWIPE_<LIMIT> settings (the fields of SwipeLimits)
PLAINTEXT_BOUNDS = {"max_swipes": (1, 4_096), "max_points": (8, 512)}
# the pool pod's resources in the manifests `tacit deploy` writes
RESOURCES = {
    "cpu_request": "250m",
    "memory_request": "512Mi",
    "cpu_limit": "1",
    "memory_limit": "1Gi",
}
BENCH = {"rows_per_job": 4, "max_batch": 256}


def load(device: str = "cpu", weights_dir: Path | None = None) -> SwipePipeline:
    """The swipe pipeline with the committed weights (or those in `weights_dir`) on `device`."""
    from pipelines.weights import load_weights

    from tacit_swipe.model import SwipeEncoder
    from tacit_swipe.pipeline import SwipePipeline

    encoder, calibration, meta = load_weights(
        weights_dir or WEIGHTS, lambda m: SwipeEncoder(**m["encoder"])
    )
    return SwipePipeline(encoder, calibration, model_version=meta["model_version"], device=device)
