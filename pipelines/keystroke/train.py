"""Train the keystroke encoder on CMU subjects with an episodic scaled-Manhattan ranking objective.

Each step, for every training subject: a random window of consecutive typings is the
enrolment set, later typings are genuine probes, and other subjects' first typings
(unpractised, as an impostor typing someone else's phrase) are impostor probes. The
loss ranks every genuine probe closer than every impostor probe to the template.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from pipelines.evaluation.calibration import fit_calibration
from pipelines.evaluation.harness import PipelineScorer, run_protocol
from pipelines.keystroke.dataset import load_protocol, model_inputs, read_subjects
from pipelines.keystroke.model import KeystrokeEncoder, timing_scale
from pipelines.keystroke.pipeline import KeystrokePipeline, Scoring

MODEL_VERSION = "keystroke-enc-1"
HPARAMS = {
    "hidden": 128,
    "dim": 32,
    "steps": 400,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "impostor_reps": 5,
}


def _robust_distance(
    probe: torch.Tensor, enrol: torch.Tensor, keep: int | None = None
) -> torch.Tensor:
    """The pipeline's template distance in torch: median/MAD scaled Manhattan, `keep` smallest terms."""
    med = enrol.median(dim=0).values
    mad = (enrol - med).abs().median(dim=0).values.clamp_min(1e-3 if keep is None else 1e-4)
    dev = (probe - med).abs() / mad
    if keep is not None:
        dev = dev.sort(dim=1).values[:, :keep]
    return dev.mean(1)


def fit_encoder(
    inputs: dict[str, np.ndarray],
    *,
    seed: int,
    scoring: Scoring | None = None,
    progress: Callable[[str], None] | None = None,
) -> KeystrokeEncoder:
    """Train an encoder on subject -> [reps, 31] timings (reps in typing order)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    h = HPARAMS
    scoring = scoring or Scoring()
    model = KeystrokeEncoder(hidden=int(h["hidden"]), dim=int(h["dim"]))
    subjects = list(inputs)
    x = {s: torch.from_numpy(inputs[s]) for s in subjects}
    z = timing_scale(torch.cat(list(x.values())))
    model.mean.copy_(z.mean(0))
    model.std.copy_(z.std(0).clamp_min(1e-3))
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(h["lr"]), weight_decay=float(h["weight_decay"])
    )
    steps, early = int(h["steps"]), int(h["impostor_reps"])
    for step in range(steps):
        emb = {s: model(x[s]) for s in subjects}
        loss = torch.zeros(())
        for s in subjects:
            n, size = len(x[s]), scoring.recent
            start = int(rng.integers(0, n - size - 20 + 1))
            gidx = torch.from_numpy(rng.integers(start + size, min(n, start + size + 200), 64))
            others = [o for o in subjects if o != s]
            # the learned distance is trained on top of the fixed timing distance it is added to
            raw_t = x[s][start : start + size]
            g_raw = _robust_distance(x[s][gidx], raw_t, scoring.keep)
            i_raw = _robust_distance(torch.cat([x[o][:early] for o in others]), raw_t, scoring.keep)
            enrol = emb[s][start : start + size]
            g_emb = _robust_distance(emb[s][gidx], enrol)
            i_emb = _robust_distance(torch.cat([emb[o][:early] for o in others]), enrol)
            g = scoring.raw_weight * g_raw + scoring.emb_weight * g_emb
            i = scoring.raw_weight * i_raw + scoring.emb_weight * i_emb
            loss = loss + torch.nn.functional.softplus(g[:, None] - i[None, :]).mean()
        loss = loss / len(subjects)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress and (step % 100 == 0 or step == steps - 1):
            progress(f"step {step + 1}/{steps} loss {float(loss.detach()):.4f}")
    return model.eval()


def train(
    data_dir: Path,
    *,
    out: Path,
    seed: int = 0,
    subjects: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train on `subjects` (default: all in the file), calibrate on them, write weights + calibration."""
    t0 = time.monotonic()
    table = read_subjects(data_dir)
    names = subjects or list(table)
    inputs = {s: model_inputs(table[s][1]) for s in names}
    # trained with the learned distance at full weight; scored at half weight (chosen on held-out subjects)
    encoder = fit_encoder(inputs, seed=seed, scoring=Scoring(emb_weight=1.0), progress=progress)
    scoring = Scoring()
    from pipelines.evaluation.calibration import Calibration

    pipeline = KeystrokePipeline(
        encoder, Calibration(0.0, -1.0), scoring, model_version=MODEL_VERSION
    )
    scorer = PipelineScorer(pipeline)
    # calibrate the raw distance: score = -distance under the placeholder calibration's logit
    comps = run_protocol(load_protocol(data_dir, names), _DistanceScorer(pipeline, scorer))
    g = np.array([-c.score for c in comps if c.genuine])
    i = np.array([-c.score for c in comps if not c.genuine])
    calibration = fit_calibration(g, i, name="weighted scaled Manhattan (embedding + timings)")
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in encoder.state_dict().items()}
    config = {"hidden": encoder.hidden, "dim": encoder.dim, "n_features": encoder.n_features}
    save_file(
        tensors,
        str(out / "model.safetensors"),
        metadata={"model_version": MODEL_VERSION, "config": json.dumps(config)},
    )
    calibration.save(
        out / "calibration.json",
        model_version=MODEL_VERSION,
        scoring=asdict(scoring),
        encoder=config,
        trained_on={
            "data": "CMU DSL-StrongPasswordData.csv",
            "subjects": names,
            "seed": seed,
            "hparams": HPARAMS,
        },
    )
    return {
        "model_version": MODEL_VERSION,
        "subjects": len(names),
        "seconds": round(time.monotonic() - t0, 1),
        **asdict(calibration),
    }


class _DistanceScorer:
    """Scores probes by negative distance, for fitting the calibration."""

    name = "distance"

    def __init__(self, pipeline: KeystrokePipeline, scorer: PipelineScorer) -> None:
        self.pipeline, self.scorer = pipeline, scorer

    def fit(self, enrol: np.ndarray) -> object:
        return self.scorer.fit(enrol)

    def score(self, state: object, probes: np.ndarray) -> np.ndarray:
        from pipelines.base import Template

        assert isinstance(state, Template)
        return -self.pipeline.distances(state, self.scorer.embed(probes))
