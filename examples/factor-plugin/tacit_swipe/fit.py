"""Rebuild the committed weights from synthetic swipers: ``python -m tacit_swipe.fit [--out DIR]``.

The encoder is trained on one set of synthetic people (each step: a few swipes of every
person in a random group, a prototype loss that puts each swipe nearest its owner's
mean); the calibration (distance -> llr, and the correlation of swipes within one job)
is fitted on other people the encoder has not seen, as Tacit's built-in factors do.
A real factor trains on captured data instead; the rest of the recipe stays.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from pipelines.evaluation.calibration import Calibration, fit_calibration, fit_job_fusion
from safetensors.torch import save_file

from tacit_swipe import WEIGHTS
from tacit_swipe.gestures import decode_swipes, features
from tacit_swipe.model import SwipeEncoder
from tacit_swipe.pipeline import SwipePipeline
from tacit_swipe.synthetic import capture, make_person

MODEL_VERSION = "swipe-mlp-1"
HPARAMS = {"hidden": 64, "dim": 16, "steps": 300, "lr": 3e-3, "people": 200, "swipes": 40}
ENROL, PROBES = 20, 20


def swipe_features(people: range, swipes: int, seed: int) -> np.ndarray:
    """[people, swipes, 16] features of synthetic swipers `people`."""
    rng = np.random.default_rng(seed)
    return np.stack([features(decode_swipes(capture(make_person(p), rng, swipes))) for p in people])


def fit_encoder(x: np.ndarray, *, seed: int) -> SwipeEncoder:
    """Train on [people, swipes, 16] with a prototype loss over random groups of people."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    h = HPARAMS
    model = SwipeEncoder(x.shape[2], hidden=int(h["hidden"]), dim=int(h["dim"]))
    flat = torch.from_numpy(x.reshape(-1, x.shape[2]))
    model.mean.copy_(flat.mean(0))
    model.std.copy_(flat.std(0).clamp_min(1e-3))
    opt = torch.optim.AdamW(model.parameters(), lr=float(h["lr"]), weight_decay=1e-4)
    data = torch.from_numpy(x)
    for _ in range(int(h["steps"])):
        group = torch.from_numpy(rng.choice(len(x), 32, replace=False))
        order = torch.from_numpy(rng.permutation(x.shape[1]))
        support, query = data[group][:, order[:10]], data[group][:, order[10:20]]
        protos = model(support).mean(1)  # [32, D]
        q = model(query.reshape(-1, x.shape[2]))  # [32 * 10, D]
        logits = -torch.cdist(q, protos)
        labels = torch.arange(len(group)).repeat_interleave(10)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def calibrate(encoder: SwipeEncoder, x: np.ndarray) -> Calibration:
    """Distances of held-out people's probes to their own and another's template -> calibration."""
    pipeline = SwipePipeline(encoder, Calibration(0.0, -1.0), model_version="")
    emb = [pipeline.embed(torch.from_numpy(p)).double().numpy() for p in x]
    genuine, impostor = [], []
    for i, e in enumerate(emb):
        template = pipeline.enrol(e[:ENROL])
        genuine.append(pipeline.distances(template, e[ENROL : ENROL + PROBES]))
        other = emb[(i + 1) % len(emb)]
        impostor.append(pipeline.distances(template, other[ENROL : ENROL + PROBES]))
    cal = fit_calibration(np.concatenate(genuine), np.concatenate(impostor), name="swipe distance")
    return fit_job_fusion(cal, genuine, impostor)


def fit(out: Path, *, seed: int = 0) -> dict[str, object]:
    """Train, calibrate and write model.safetensors and calibration.json into `out`."""
    people, swipes = int(HPARAMS["people"]), int(HPARAMS["swipes"])
    encoder = fit_encoder(swipe_features(range(people), swipes, seed), seed=seed)
    held_out = swipe_features(range(100_000, 100_000 + people // 2), ENROL + PROBES, seed + 1)
    cal = calibrate(encoder, held_out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in encoder.state_dict().items()}, out / "model.safetensors"
    )
    meta = {
        "model_version": MODEL_VERSION,
        "encoder": {"n_features": encoder.n_features, "hidden": encoder.hidden, "dim": encoder.dim},
        "calibrated_on": f"{people // 2} synthetic people the encoder has not seen",
        "trained_on": {"data": "tacit_swipe.synthetic", "seed": seed, "hparams": HPARAMS},
    }
    cal.save(out / "calibration.json", **meta)
    return json.loads((out / "calibration.json").read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tacit_swipe.fit", description=__doc__)
    p.add_argument("--out", type=Path, default=WEIGHTS, help="where the weights go")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    meta = fit(args.out, seed=args.seed)
    print(f"wrote {args.out}: {meta['model_version']}, rho {meta['rho']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
