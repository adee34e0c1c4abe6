"""A factor's weights folder: ``model.safetensors`` and ``calibration.json`` side by side.

``calibration.json`` holds the calibration, the model version and what the factor's
``load`` needs to rebuild its encoder (its shape, the scoring).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from pipelines.evaluation.calibration import Calibration

M = TypeVar("M", bound=torch.nn.Module)


def load_weights(
    weights_dir: Path | str, build: Callable[[dict[str, Any]], M]
) -> tuple[M, Calibration, dict[str, Any]]:
    """The encoder `build(meta)` makes, with the folder's weights; the calibration; the meta."""
    weights_dir = Path(weights_dir)
    meta = json.loads((weights_dir / "calibration.json").read_text())
    encoder = build(meta)
    encoder.load_state_dict(load_file(str(weights_dir / "model.safetensors")))
    return encoder, Calibration.load(weights_dir / "calibration.json"), meta


def save_weights(
    out: Path,
    encoder: torch.nn.Module,
    calibration: Calibration,
    *,
    model_version: str,
    config: dict[str, Any],
    **meta: object,
) -> None:
    """Write the encoder (its `config` in the file's metadata) and the calibration into `out`.

    `config` is kept in calibration.json as ``encoder``, next to `model_version` and `meta`.
    """
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in encoder.state_dict().items()}
    save_file(
        tensors,
        str(out / "model.safetensors"),
        metadata={"model_version": model_version, "config": json.dumps(config)},
    )
    calibration.save(out / "calibration.json", model_version=model_version, encoder=config, **meta)


def save_trained(
    out: Path,
    encoder: torch.nn.Module,
    calibration: Calibration,
    *,
    model_version: str,
    config: dict[str, Any],
    data: str,
    subjects: list[str],
    seed: int,
    hparams: Mapping[str, object],
    started: float,
    summary: Mapping[str, object] | None = None,
    **meta: object,
) -> dict[str, Any]:
    """`save_weights` with what the encoder was trained on; returns the training's summary.

    The summary: model version, subject count, seconds since `started` (``time.monotonic``),
    `summary`'s entries, then the calibration.
    """
    trained_on = {"data": data, "subjects": subjects, "seed": seed, "hparams": hparams}
    save_weights(
        out,
        encoder,
        calibration,
        model_version=model_version,
        config=config,
        trained_on=trained_on,
        **meta,
    )
    return {
        "model_version": model_version,
        "subjects": len(subjects),
        "seconds": round(time.monotonic() - started, 1),
        **(summary or {}),
        **asdict(calibration),
    }
