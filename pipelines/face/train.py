"""Train the face encoder on ORL subjects: additive-margin softmax over identities, heavy augmentation.

With few identities the CNN alone generalises poorly to new faces, so the pipeline
pairs it with LBP histograms; the training subjects' impostor distances set the
scale of each. The calibration is fitted out of fold: an encoder trained on each half
of the training subjects (alternate subjects) scores the other half, and the logistic
fit and the job fusion (rho) use those scores, so P(genuine) is not over-confident
on new faces.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipelines.evaluation.calibration import Calibration, fit_calibration, fit_job_fusion
from pipelines.face.augment import augment
from pipelines.face.dataset import ENROL, PROBES, model_inputs, read_subjects
from pipelines.face.model import FaceEncoder
from pipelines.face.pipeline import FacePipeline, Scoring
from pipelines.weights import save_trained

MODEL_VERSION = "face-cnn-lbp-2"
HPARAMS = {
    "width": 16,
    "dim": 128,
    "epochs": 100,
    "lr": 2e-3,
    "weight_decay": 5e-4,
    "margin": 0.3,
    "scale": 16.0,
}
WEIGHTS = {"cnn_weight": 0.5, "lbp_weight": 1.0}


def fit_encoder(
    images: dict[str, torch.Tensor], *, seed: int, progress: Callable[[str], None] | None = None
) -> FaceEncoder:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    h = HPARAMS
    model = FaceEncoder(width=int(h["width"]), dim=int(h["dim"]))
    classes = torch.nn.Parameter(torch.randn(len(images), model.dim) * 0.01)
    x = torch.cat(list(images.values()))
    y = torch.cat([torch.full((len(v),), k) for k, v in enumerate(images.values())])
    epochs = int(h["epochs"])
    opt = torch.optim.AdamW(
        [*model.parameters(), classes], lr=float(h["lr"]), weight_decay=float(h["weight_decay"])
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, float(h["lr"]), total_steps=epochs)
    for epoch in range(epochs):
        model.train()
        cos = model(augment(x, g)) @ F.normalize(classes, dim=1).T
        cos = cos - float(h["margin"]) * F.one_hot(y, len(images))
        loss = F.cross_entropy(float(h["scale"]) * cos, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress and (epoch % 25 == 0 or epoch == epochs - 1):
            progress(f"epoch {epoch + 1}/{epochs} loss {float(loss.detach()):.4f}")
    return model.eval()


def _protocol_runs(
    pipeline: FacePipeline, images: dict[str, torch.Tensor]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per template: the owner's probe distances, and each other subject's (in image order)."""
    emb = {s: pipeline.embed(x).numpy() for s, x in images.items()}
    enrol_idx, probe_idx = [k - 1 for k in ENROL], [k - 1 for k in PROBES]
    g: list[np.ndarray] = []
    i: list[np.ndarray] = []
    for s in images:
        t = pipeline.enrol(emb[s][enrol_idx])
        for o in images:
            (g if o == s else i).append(pipeline.distances(t, emb[o][probe_idx]))
    return g, i


def _protocol_distances(
    pipeline: FacePipeline, images: dict[str, torch.Tensor]
) -> tuple[np.ndarray, np.ndarray]:
    g, i = _protocol_runs(pipeline, images)
    return np.concatenate(g), np.concatenate(i)


def fit_pipeline(
    images: dict[str, torch.Tensor], *, seed: int, progress: Callable[[str], None] | None = None
) -> FacePipeline:
    """Encoder and distance scales from `images` (calibration left as a placeholder)."""
    encoder = fit_encoder(images, seed=seed, progress=progress)
    placeholder = Calibration(0.0, -1.0)
    scales = {}
    for part in ("cnn", "lbp"):
        only = Scoring(cnn_weight=float(part == "cnn"), lbp_weight=float(part == "lbp"))
        _, imp = _protocol_distances(
            FacePipeline(encoder, placeholder, only, model_version=MODEL_VERSION), images
        )
        scales[f"{part}_scale"] = float(np.median(imp))
    scoring = Scoring(**WEIGHTS, **scales)
    return FacePipeline(encoder, placeholder, scoring, model_version=MODEL_VERSION)


def _calibrate(g: list[np.ndarray], i: list[np.ndarray]) -> Calibration:
    base = fit_calibration(
        np.concatenate(g),
        np.concatenate(i),
        name="weighted CNN cosine + LBP chi-square, nearest enrolment frame",
    )
    return fit_job_fusion(base, g, i, sizes=(2, 3, 4, 5))


def train(
    data_dir: Path,
    *,
    out: Path,
    seed: int = 0,
    subjects: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    out_of_fold: bool = True,
) -> dict:
    """Train on `subjects` (default: all), set distance scales on them, calibrate out of fold, write.

    `out_of_fold=False` calibrates on the training subjects instead (two fewer trainings;
    for held-out EER runs, where the calibration does not change the per-subject EER).
    """
    t0 = time.monotonic()
    table = read_subjects(data_dir)
    names = subjects or list(table)
    images = {s: torch.from_numpy(model_inputs(table[s])) for s in names}
    g: list[np.ndarray] = []
    i: list[np.ndarray] = []
    if out_of_fold and len(names) >= 4:
        for k in range(2):
            held = names[k::2]
            if progress:
                progress(f"out-of-fold model {k + 1}/2: holding out {len(held)} subjects")
            fold = fit_pipeline({s: images[s] for s in names if s not in held}, seed=seed)
            gk, ik = _protocol_runs(fold, {s: images[s] for s in held})
            g, i = g + gk, i + ik
        calibrated_on = "out of fold (2 folds by subject)"
    pipeline = fit_pipeline(images, seed=seed, progress=progress)
    encoder, scoring = pipeline.encoder, pipeline.scoring
    if not g:
        g, i = _protocol_runs(pipeline, images)
        calibrated_on = "training subjects"
    calibration = _calibrate(g, i)
    return save_trained(
        out,
        encoder,
        calibration,
        model_version=MODEL_VERSION,
        config={"width": encoder.width, "dim": encoder.dim},
        data="ORL / AT&T Database of Faces",
        subjects=names,
        seed=seed,
        hparams=HPARAMS,
        started=t0,
        scoring=asdict(replace(scoring)),
        calibrated_on=calibrated_on,
    )
