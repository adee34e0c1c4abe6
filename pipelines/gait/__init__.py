"""Gait factor: walking motion (accelerometer + gyroscope) -> calibrated verification.

``load(device)`` returns the pipeline with the weights committed in ``weights/``
(trained on UCI HAPT; non-commercial use only).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.gait.pipeline import GaitPipeline, load_pipeline_from

WEIGHTS_DIR = Path(__file__).parent / "weights"


def load(device: str = "cpu", weights_dir: Path | None = None) -> GaitPipeline:
    """The gait pipeline on `device` (``cpu`` or ``cuda:N``), committed weights by default."""
    return load_pipeline_from(weights_dir or WEIGHTS_DIR, device)


def load_from(weights_dir: Path, device: str = "cpu") -> GaitPipeline:
    """The gait pipeline with weights from another folder (training, evaluation)."""
    return load_pipeline_from(weights_dir, device)


__all__ = ["GaitPipeline", "WEIGHTS_DIR", "load", "load_from"]
