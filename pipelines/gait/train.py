"""Train the gait encoder on HAPT walking (metric learning by user) and fit its calibration.

    python -m pipelines.gait.train --data /work/shared/data/gait --out pipelines/gait/weights

Weights trained on HAPT inherit its terms: non-commercial use only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from pipelines.gait.dataset import Segment, load_protocol, load_segments, subject_name
from pipelines.gait.model import GaitEncoder
from pipelines.gait.signal import WINDOW

MODEL_VERSION = "gait-cnn-1"
TOP_K = 5  # mean of the 5 nearest enrolment windows: best of 1/5/10/20/centroid in CV


class CosineMargin(nn.Module):
    """Additive-margin softmax over learnable user proxies (CosFace): pulls a user's
    windows together and pushes users apart on the unit sphere."""

    def __init__(self, dim: int, classes: int, scale: float = 16.0, margin: float = 0.2) -> None:
        super().__init__()
        self.proxies = nn.Parameter(torch.randn(classes, dim) * 0.1)
        self.scale, self.margin = scale, margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = embeddings @ F.normalize(self.proxies, dim=1).T
        cos = cos - self.margin * F.one_hot(labels, cos.shape[1])
        return F.cross_entropy(self.scale * cos, labels)


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation about a random axis by at most `max_deg` (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = math.radians(rng.uniform(-max_deg, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


class WindowSampler:
    """Draws augmented training windows: random crops of walking segments, time-warped,
    rotated (the phone sits a little differently each session) and rescaled."""

    def __init__(self, segments: list[Segment], users: list[int], seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.by_user = {
            label: [s.signal for s in segments if s.user == u and s.signal.shape[0] >= WINDOW + 16]
            for label, u in enumerate(users)
        }

    def crop(self, signal: np.ndarray) -> np.ndarray:
        rng = self.rng
        length = int(round(WINDOW * rng.uniform(0.9, 1.1)))
        length = min(length, signal.shape[0])
        start = int(rng.integers(0, signal.shape[0] - length + 1))
        piece = signal[start : start + length]
        grid = np.linspace(0, length - 1, WINDOW)
        x = np.stack([np.interp(grid, np.arange(length), piece[:, c]) for c in range(6)], 0)
        r = _rotation(rng, 15.0)
        x[:3], x[3:] = r @ x[:3], r @ x[3:]
        x[:3] *= rng.uniform(0.9, 1.1)
        x[3:] *= rng.uniform(0.9, 1.1)
        return x + rng.normal(0, 0.01, size=x.shape)

    def batch(self, per_user: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for label, signals in self.by_user.items():
            lengths = np.array([s.shape[0] for s in signals], float)
            picks = self.rng.choice(len(signals), size=per_user, p=lengths / lengths.sum())
            xs += [self.crop(signals[i]) for i in picks]
            ys += [label] * per_user
        return torch.from_numpy(np.stack(xs).astype(np.float32)), torch.tensor(ys)


def fit_encoder(
    segments: list[Segment],
    *,
    seed: int,
    steps: int,
    per_user: int = 12,
    lr: float = 3e-3,
    progress: Callable[[str], None] | None = None,
) -> tuple[GaitEncoder, list[float]]:
    """Train an encoder on the users of `segments`; returns it (eval mode) and the loss curve."""
    torch.manual_seed(seed)
    users = sorted({s.user for s in segments})
    sampler = WindowSampler(segments, users, seed)
    model = GaitEncoder()
    loss_fn = CosineMargin(model.dim, len(users))
    params = list(model.parameters()) + list(loss_fn.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    losses = []
    model.train()
    for step in range(steps):
        x, y = sampler.batch(per_user)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress and (step + 1) % 100 == 0:
            progress(f"step {step + 1}/{steps} loss {np.mean(losses[-100:]):.3f}")
    return model.eval(), losses


def train(
    data_dir: Path,
    *,
    out: Path,
    seed: int = 0,
    subjects: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    steps: int = 300,
    calibrate: str = "cross",
    out_of_fold: bool | None = None,
    all_activities: bool = False,
) -> dict:
    """Train on `subjects` (all HAPT users found when None), write model.safetensors and
    calibration.json into `out`, and return a summary.

    ``calibrate="cross"`` fits the calibration on scores of users a model did not see
    (two half-models, each scoring the other half), so the posteriors are not
    overconfident; ``"train"`` fits it on the final model's own training users (faster).
    ``out_of_fold`` (the evaluation harness's name for the same choice) overrides
    `calibrate` when given: True is ``"cross"``, False is ``"train"``. ``all_activities``
    trains the encoder on every labelled segment of the users (sitting, stairs, lying,
    transitions too, labelled by user) instead of walking only; scoring stays on walking.
    """
    from pipelines.evaluation.calibration import Calibration
    from pipelines.gait.calibrate import fit_calibration, similarity_runs
    from pipelines.gait.pipeline import GaitPipeline

    if out_of_fold is not None:
        calibrate = "cross" if out_of_fold else "train"
    started = time.monotonic()
    segments = load_segments(data_dir, subjects)
    users = sorted({s.user for s in segments})
    if len(users) < 2:
        raise ValueError("training needs at least two users")
    if all_activities:
        segments = load_segments(data_dir, subjects, activities=tuple(range(1, 13)))
    model, losses = fit_encoder(segments, seed=seed, steps=steps, progress=progress)

    placeholder = Calibration(intercept=0.0, slope=1.0, rho=0.0)
    if calibrate == "cross" and len(users) >= 4:
        halves = [users[0::2], users[1::2]]
        genuine, impostor = [], []
        for k, (fit_users, score_users) in enumerate((halves, halves[::-1])):
            if progress:
                progress(f"calibration model {k + 1}/2")
            half_model, _ = fit_encoder(
                [s for s in segments if s.user in fit_users], seed=seed + 1 + k, steps=steps
            )
            names = [subject_name(u) for u in score_users]
            g, i = similarity_runs(
                GaitPipeline(half_model, placeholder, MODEL_VERSION, "cpu", top_k=TOP_K),
                load_protocol(data_dir, names),
                TOP_K,
            )
            genuine += g
            impostor += i
    else:
        genuine, impostor = similarity_runs(
            GaitPipeline(model, placeholder, MODEL_VERSION, "cpu", top_k=TOP_K),
            load_protocol(data_dir, [subject_name(u) for u in users]),
            TOP_K,
        )
    calibration = fit_calibration(genuine, impostor)

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"), metadata={"model_version": MODEL_VERSION})
    meta = {
        "model_version": MODEL_VERSION,
        "width": model.width,
        "embedding_dim": model.dim,
        "slope": calibration.slope,
        "intercept": calibration.intercept,
        "rho": calibration.rho,
        "top_k": TOP_K,
        "calibrated_on": calibrate if calibrate == "train" or len(users) < 4 else "cross",
        "trained_on": [subject_name(u) for u in users],
        "seed": seed,
        "steps": steps,
        "data": "UCI HAPT v2.1 (Reyes-Ortiz et al.; Anguita et al., ESANN 2013)",
        "license": "trained on HAPT: non-commercial use only",
    }
    (out / "calibration.json").write_text(json.dumps(meta, indent=2) + "\n")
    summary = {
        **meta,
        "final_loss": float(np.mean(losses[-50:])) if losses else float("nan"),
        "first_loss": float(np.mean(losses[:50])) if losses else float("nan"),
        "seconds": round(time.monotonic() - started, 1),
    }
    if progress:
        progress(f"wrote {out} in {summary['seconds']} s")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the gait encoder on UCI HAPT.")
    parser.add_argument("--data", type=Path, required=True, help="HAPT_RawData or its parent")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--calibrate", choices=("cross", "train"), default="cross")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    summary = train(
        args.data,
        out=args.out,
        seed=args.seed,
        steps=args.steps,
        calibrate=args.calibrate,
        progress=lambda m: print(m, file=sys.stderr),
    )
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
