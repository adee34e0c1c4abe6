"""Face: a small CNN with LBP histograms, trained on the ORL / AT&T faces."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.face.pipeline import FacePipeline

WEIGHTS = Path(__file__).parent / "weights"


def load(device: str = "cpu", weights_dir: Path | None = None) -> FacePipeline:
    """The face pipeline with the committed weights (or those in `weights_dir`) on `device`."""
    from safetensors.torch import load_file

    from pipelines.evaluation.calibration import Calibration
    from pipelines.face.model import FaceEncoder
    from pipelines.face.pipeline import Scoring

    wdir = Path(weights_dir) if weights_dir else WEIGHTS
    meta = json.loads((wdir / "calibration.json").read_text())
    encoder = FaceEncoder(width=meta["encoder"]["width"], dim=meta["encoder"]["dim"])
    encoder.load_state_dict(load_file(str(wdir / "model.safetensors")))
    return FacePipeline(
        encoder,
        Calibration.load(wdir / "calibration.json"),
        Scoring(**meta["scoring"]),
        model_version=meta["model_version"],
        device=device,
    )
