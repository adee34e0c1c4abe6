"""Mean per-subject equal-error rate for gait scorers, and a cross-validation by user.

    python -m pipelines.gait.evaluate --data /work/shared/data/gait [--folds 3] [--json]

Each subject enrols, then scores its genuine probes and the impostor probes lent by
every other subject in the same evaluation set; the figure is the mean of the
subjects' EERs. With ``--folds k`` the model is trained on the other folds' users
and evaluated on users it never saw; impostors come from the held-out users only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.evaluation.protocol import EvalSubject, Scorer

if TYPE_CHECKING:
    from pipelines.gait.pipeline import GaitPipeline


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal-error rate of scores (higher = more genuine), interpolated at the FAR/FRR crossing."""
    g, i = np.sort(np.asarray(genuine, float)), np.sort(np.asarray(impostor, float))
    thresholds = np.unique(np.concatenate([g, i]))
    frr = np.searchsorted(g, thresholds, side="left") / g.size  # genuine below threshold
    far = 1.0 - np.searchsorted(i, thresholds, side="left") / i.size  # impostors at/above
    k = int(np.argmax(frr >= far))
    if k == 0:
        return float((frr[0] + far[0]) / 2)
    # linear interpolation between the two thresholds around the crossing
    d0, d1 = far[k - 1] - frr[k - 1], far[k] - frr[k]
    w = d0 / (d0 - d1) if d0 != d1 else 0.5
    return float(frr[k - 1] + w * (frr[k] - frr[k - 1]))


def subject_eers(subjects: list[EvalSubject], scorer: Scorer) -> dict[str, float]:
    """Per-subject EER of `scorer` on the protocol (impostors: the other subjects' lent probes)."""
    out = {}
    for s in subjects:
        state = scorer.fit(s.enrol)
        gen = scorer.score(state, np.concatenate([x for _, x in s.genuine]))
        imp_inputs = [x for o in subjects if o.subject != s.subject for _, x in o.impostor]
        imp = scorer.score(state, np.concatenate(imp_inputs))
        out[s.subject] = eer(gen, imp)
    return out


def probe_batches(subject: EvalSubject, size: int) -> list[np.ndarray]:
    """The subject's probe windows in recorded order, cut into full batches of `size`."""
    x = (
        np.concatenate([w for _, w in subject.genuine])
        if subject.genuine
        else np.zeros((0, 6, 128))
    )
    return [x[k * size : (k + 1) * size] for k in range(len(x) // size)]


def batch_subject_eers(
    subjects: list[EvalSubject], pipeline: GaitPipeline, size: int = 8
) -> dict[str, float]:
    """Per-subject EER of the product's per-batch score: `size` consecutive windows fused by `verify`.

    Genuine: every full batch of the subject's probe windows; impostor: every full batch
    of every other subject's probe windows, against the subject's template.
    """
    embed = pipeline.embed_numpy
    batches = {
        s.subject: [embed(b.astype(np.float32)) for b in probe_batches(s, size)] for s in subjects
    }
    out = {}
    for s in subjects:
        template = pipeline.enrol(embed(s.enrol))
        verify = pipeline.verify
        gen = [verify(template, e).llr for e in batches[s.subject]]
        imp = [
            verify(template, e).llr
            for o in subjects
            if o.subject != s.subject
            for e in batches[o.subject]
        ]
        if gen and imp:
            out[s.subject] = eer(np.array(gen), np.array(imp))
    return out


def cross_validate(
    data_dir: Path,
    *,
    folds: int = 3,
    seed: int = 0,
    steps: int = 300,
    progress: Callable[[str], None] | None = None,
    batch: int | None = None,
    round_robin: bool = False,
    all_activities: bool = False,
    calibrate: str = "train",
) -> dict:
    """Train on k-1 folds of users, evaluate model and baseline on the unseen fold.

    With `batch`, also the per-batch EER (`batch` windows fused, as a job is scored).
    `round_robin` takes the folds of `tacit eval gait --folds` (user i in fold i mod k)
    instead of a shuffle; `all_activities` and `calibrate` are passed to training (the
    per-batch EER depends on the calibration: ``"cross"`` is the committed recipe's).
    """
    import tempfile

    from pipelines.evaluation.harness import PipelineScorer
    from pipelines.gait import load
    from pipelines.gait.baseline import WindowStatsBaseline
    from pipelines.gait.dataset import load_protocol
    from pipelines.gait.train import train

    subjects = load_protocol(data_dir)
    names = [s.subject for s in subjects]
    order = (
        np.arange(len(names))
        if round_robin
        else np.random.default_rng(seed).permutation(len(names))
    )
    model_eer: dict[str, float] = {}
    base_eer: dict[str, float] = {}
    batch_eer: dict[str, float] = {}
    for k in range(folds):
        test = [names[i] for i in order[k::folds]]
        train_names = [n for n in names if n not in test]
        with tempfile.TemporaryDirectory() as tmp:
            train(
                data_dir,
                out=Path(tmp),
                seed=seed,
                subjects=train_names,
                progress=progress,
                steps=steps,
                calibrate=calibrate,
                all_activities=all_activities,
            )
            pipeline = load(weights_dir=Path(tmp))
        held_out = [s for s in subjects if s.subject in test]
        model_eer |= subject_eers(
            held_out, PipelineScorer(pipeline, score_probes=pipeline.window_scores)
        )
        if batch:
            batch_eer |= batch_subject_eers(held_out, pipeline, batch)
        base_eer |= subject_eers(held_out, WindowStatsBaseline())
        if progress:
            m = np.mean([model_eer[t] for t in test])
            b = np.mean([base_eer[t] for t in test])
            progress(f"fold {k}: model EER {m:.3f}, baseline EER {b:.3f} on {test}")
    return {
        "folds": folds,
        "seed": seed,
        "steps": steps,
        "round_robin": round_robin,
        "all_activities": all_activities,
        "calibrate": calibrate,
        "model_mean_eer": float(np.mean(list(model_eer.values()))),
        "baseline_mean_eer": float(np.mean(list(base_eer.values()))),
        "model_eer": model_eer,
        "baseline_eer": base_eer,
        **(
            {
                "batch": batch,
                "batch_mean_eer": float(np.mean(list(batch_eer.values()))),
                "batch_eer": batch_eer,
            }
            if batch
            else {}
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="HAPT_RawData or its parent")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300, help="training steps per fold")
    parser.add_argument(
        "--batch", type=int, help="also the per-batch EER, this many windows per batch"
    )
    parser.add_argument("--round-robin", action="store_true", help="folds of `tacit eval --folds`")
    parser.add_argument(
        "--all-activities", action="store_true", help="train on every labelled segment"
    )
    parser.add_argument(
        "--calibrate", choices=("train", "cross"), default="train", help="fold models' calibration"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    result = cross_validate(
        args.data,
        folds=args.folds,
        seed=args.seed,
        steps=args.steps,
        progress=lambda m: print(m, file=sys.stderr),
        batch=args.batch,
        round_robin=args.round_robin,
        all_activities=args.all_activities,
        calibrate=args.calibrate,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"model    mean EER {result['model_mean_eer']:.4f} ({args.folds}-fold, unseen users)")
        print(f"baseline mean EER {result['baseline_mean_eer']:.4f}")
        if args.batch:
            print(
                f"model    mean EER per batch of {args.batch} windows {result['batch_mean_eer']:.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
