"""Train the keystroke model on CMU subjects: the encoder, the detector weights, the calibration.

Encoder: each step, for every training subject, a random window of consecutive
typings is the enrolment set, later typings are genuine probes, and other subjects'
first typings (unpractised, as an impostor typing someone else's phrase) are impostor
probes. The loss ranks every genuine probe closer than every impostor probe, with the
embedding distance added to the timing distance it is fused with, so the embedding
learns what the timings miss.

The template rule (whether the enrolment is moved along its practice trend, and how
far ahead), the detector weights and the calibration come from subjects the encoder
has not seen: the training subjects are split in two (alternate subjects), an encoder
is trained on each part and scores the other, and the rule and weights (grid, lowest
mean per-subject EER) and the calibration are fitted on those out-of-fold scores. The
shipped encoder is then trained on every training subject.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from pipelines.evaluation.calibration import Calibration, fit_calibration, fit_job_fusion
from pipelines.evaluation.metrics import eer
from pipelines.keystroke.dataset import ENROL, GENUINE, IMPOSTOR, model_inputs, read_subjects
from pipelines.keystroke.detectors import DETECTORS, LOG_OFFSET
from pipelines.keystroke.model import KeystrokeEncoder, timing_scale
from pipelines.keystroke.pipeline import KeystrokePipeline, Scoring
from pipelines.weights import save_trained

MODEL_VERSION = "keystroke-enc-3"
HPARAMS = {
    "hidden": 128,
    "dim": 32,
    "steps": 400,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "impostor_reps": 5,
}
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0)  # for nearest, outliers, embedding; manhattan is fixed at 1
AHEAD_GRID: tuple[int | None, ...] = (None, 0, 25, 50)  # template rule: no trend, or typings ahead
ALL_ON = Scoring(nearest=1.0, outliers=1.0, embedding=1.0)
Progress = Callable[[str], None]


def _robust_distance(
    probe: torch.Tensor, enrol: torch.Tensor, keep: int | None = None, floor: float = 1e-3
) -> torch.Tensor:
    """Median/MAD scaled Manhattan in torch, only the `keep` smallest terms."""
    med = enrol.median(dim=0).values
    mad = (enrol - med).abs().median(dim=0).values.clamp_min(floor)
    dev = (probe - med).abs() / mad
    if keep is not None:
        dev = dev.sort(dim=1).values[:, :keep]
    return dev.mean(1)


def fit_encoder(
    inputs: dict[str, np.ndarray], *, seed: int, progress: Progress | None = None
) -> KeystrokeEncoder:
    """Train an encoder on subject -> [reps, 31] timings (reps in typing order)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    h, scoring = HPARAMS, Scoring()
    model = KeystrokeEncoder(hidden=int(h["hidden"]), dim=int(h["dim"]))
    subjects = list(inputs)
    x = {s: torch.from_numpy(inputs[s].astype(np.float32)) for s in subjects}
    logt = {s: torch.log(v.clamp_min(0.0) + LOG_OFFSET) for s, v in x.items()}
    z = timing_scale(torch.cat(list(x.values())))
    model.mean.copy_(z.mean(0))
    model.std.copy_(z.std(0).clamp_min(1e-3))
    opt = torch.optim.AdamW(
        model.parameters(), lr=float(h["lr"]), weight_decay=float(h["weight_decay"])
    )
    steps, early, size = int(h["steps"]), int(h["impostor_reps"]), scoring.recent
    for step in range(steps):
        emb = {s: model(x[s]) for s in subjects}
        loss = torch.zeros(())
        for s in subjects:
            start = int(rng.integers(0, len(x[s]) - size - 20 + 1))
            gidx = torch.from_numpy(
                rng.integers(start + size, min(len(x[s]), start + size + 200), 64)
            )
            others = [o for o in subjects if o != s]
            enrol_t = logt[s][start : start + size]
            imp_t = torch.cat([logt[o][:early] for o in others])
            g = _robust_distance(logt[s][gidx], enrol_t, scoring.keep, scoring.floor)
            i = _robust_distance(imp_t, enrol_t, scoring.keep, scoring.floor)
            enrol = emb[s][start : start + size]
            g = g + _robust_distance(emb[s][gidx], enrol)
            i = i + _robust_distance(torch.cat([emb[o][:early] for o in others]), enrol)
            loss = loss + torch.nn.functional.softplus(g[:, None] - i[None, :]).mean()
        loss = loss / len(subjects)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress and (step % 100 == 0 or step == steps - 1):
            progress(f"step {step + 1}/{steps} loss {float(loss.detach()):.4f}")
    return model.eval()


class SubjectScores:
    """One subject's per-detector scores in the CMU protocol (impostors: 5 typings of each other subject)."""

    def __init__(self, genuine: np.ndarray, impostor: np.ndarray) -> None:
        self.genuine, self.impostor = genuine, impostor  # [n, 4] each

    def eer(self, weights: np.ndarray) -> float:
        return eer(-(self.genuine @ weights), -(self.impostor @ weights))


def protocol_scores(
    encoder: KeystrokeEncoder, inputs: dict[str, np.ndarray], *, ahead: int | None = None
) -> dict[str, SubjectScores]:
    """Every subject of `inputs` enrolled and probed by the others, every detector on."""
    scoring = replace(ALL_ON, ahead=ahead)
    pipeline = KeystrokePipeline(encoder, Calibration(0.0, -1.0), scoring, model_version="")
    emb = {s: pipeline.embed(torch.from_numpy(v)).double().numpy() for s, v in inputs.items()}
    out = {}
    for s, e in emb.items():
        template = pipeline.enrol(e[:ENROL])
        impostor = np.concatenate([emb[o][:IMPOSTOR] for o in emb if o != s])
        out[s] = SubjectScores(
            pipeline.detector_scores(template, e[ENROL : ENROL + GENUINE]),
            pipeline.detector_scores(template, impostor),
        )
    return out


def select_weights(by_rule: dict[int | None, dict[str, SubjectScores]]) -> Scoring:
    """The template rule and detector weights with the lowest mean per-subject EER.

    `by_rule` maps each template rule (`Scoring.ahead`) to the subjects' scores under it.
    Ties go to the first: the earlier rule in the grid, then fewer detectors.
    """
    best: tuple[float, int | None, tuple[float, ...]] | None = None
    for ahead, scores in by_rule.items():
        for ws in itertools.product(WEIGHT_GRID, repeat=len(DETECTORS) - 1):
            w = np.array([1.0, *ws])
            mean = float(np.mean([sc.eer(w) for sc in scores.values()]))
            if best is None or mean < best[0] - 1e-12:
                best = (mean, ahead, ws)
    assert best is not None
    nearest, outliers, embedding = best[2]
    return replace(
        Scoring(), ahead=best[1], nearest=nearest, outliers=outliers, embedding=embedding
    )


def calibrate(scores: dict[str, SubjectScores], scoring: Scoring) -> Calibration:
    """Per-typing logistic calibration, then the job fusion (rho) on runs of consecutive typings."""
    w = scoring.weights()
    g = [sc.genuine @ w for sc in scores.values()]
    i = [sc.impostor @ w for sc in scores.values()]
    base = fit_calibration(
        np.concatenate(g), np.concatenate(i), name="per-user normalised fusion of 4 detectors"
    )
    # impostor runs: each other subject's 5 typings against the template, in order
    imp_runs = [run for d in i for run in np.split(d, len(d) // IMPOSTOR)]
    return fit_job_fusion(base, g, imp_runs)


def out_of_fold_scores(
    inputs: dict[str, np.ndarray], *, seed: int, progress: Progress | None = None
) -> dict[int | None, dict[str, SubjectScores]]:
    """Per template rule, scores of every subject by an encoder trained on the other half."""
    names = list(inputs)
    out: dict[int | None, dict[str, SubjectScores]] = {ahead: {} for ahead in AHEAD_GRID}
    for k in range(2):
        held = names[k::2]
        if progress:
            progress(f"out-of-fold encoder {k + 1}/2: holding out {len(held)} subjects")
        enc = fit_encoder({s: inputs[s] for s in names if s not in held}, seed=seed)
        for ahead in AHEAD_GRID:
            out[ahead].update(protocol_scores(enc, {s: inputs[s] for s in held}, ahead=ahead))
    return out


def train(
    data_dir: Path,
    *,
    out: Path,
    seed: int = 0,
    subjects: list[str] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Train on `subjects` (default: all in the file), choose weights and calibrate out of fold, write."""
    t0 = time.monotonic()
    table = read_subjects(data_dir)
    names = subjects or list(table)
    inputs = {s: model_inputs(table[s][1]) for s in names}
    oof: dict[str, SubjectScores] = {}
    if len(names) >= 4:  # two folds of at least two subjects each: out-of-fold choices
        by_rule = out_of_fold_scores(inputs, seed=seed, progress=progress)
        scoring, calibrated_on = select_weights(by_rule), "out of fold (2 folds by subject)"
        oof = by_rule[scoring.ahead]
    else:  # too few people to hold any out: default rule and weights, calibration on them
        scoring, calibrated_on = Scoring(), "training subjects (too few to hold out)"
    if progress:
        weights = dict(zip(DETECTORS, scoring.weights().tolist(), strict=True))
        progress(f"template ahead {scoring.ahead}, weights {weights}")
    encoder = fit_encoder(inputs, seed=seed, progress=progress)
    calibration = calibrate(oof or protocol_scores(encoder, inputs, ahead=scoring.ahead), scoring)
    return save_trained(
        out,
        encoder,
        calibration,
        model_version=MODEL_VERSION,
        config={"hidden": encoder.hidden, "dim": encoder.dim, "n_features": encoder.n_features},
        data="CMU DSL-StrongPasswordData.csv",
        subjects=names,
        seed=seed,
        hparams=HPARAMS,
        started=t0,
        summary={"scoring": asdict(scoring)},
        scoring=asdict(scoring),
        calibrated_on=calibrated_on,
    )
