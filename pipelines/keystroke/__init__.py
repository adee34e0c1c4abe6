"""Keystroke dynamics: fixed-phrase typing rhythm (CMU benchmark model)."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.keystroke.pipeline import KeystrokePipeline

WEIGHTS = Path(__file__).parent / "weights"


def load(device: str = "cpu", weights_dir: Path | None = None) -> KeystrokePipeline:
    """The keystroke pipeline with the committed weights (or those in `weights_dir`) on `device`."""
    from safetensors.torch import load_file

    from pipelines.evaluation.calibration import Calibration
    from pipelines.keystroke.model import KeystrokeEncoder
    from pipelines.keystroke.pipeline import Scoring

    wdir = Path(weights_dir) if weights_dir else WEIGHTS
    meta = json.loads((wdir / "calibration.json").read_text())
    cfg = meta["encoder"]
    encoder = KeystrokeEncoder(n_features=cfg["n_features"], hidden=cfg["hidden"], dim=cfg["dim"])
    encoder.load_state_dict(load_file(str(wdir / "model.safetensors")))
    return KeystrokePipeline(
        encoder,
        Calibration.load(wdir / "calibration.json"),
        Scoring(**meta["scoring"]),
        model_version=meta["model_version"],
        device=device,
    )
