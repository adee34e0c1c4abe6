"""Held-out evaluation by subject: train on k-1 folds, evaluate on the fold left out, for every fold.

Folds are assigned round-robin in the data set's own order (subject i goes to fold
i mod k), so with k = 2 they are the alternate halves. Every score in the report
comes from a model that never saw the subject it scores, neither as a genuine user
nor as an impostor. The baseline is run on the same held-out comparisons.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path

import numpy as np
import torch

from core import factors as registry
from pipelines.evaluation.harness import Comparison, Progress, factor_module, run_protocol
from pipelines.evaluation.report import summarise, write_report
from pipelines.evaluation.run import baseline_scorer, load_model


def folds(subjects: list[str], k: int) -> list[list[str]]:
    """Round-robin folds in the given order: subject i goes to fold i mod k."""
    if not 2 <= k <= len(subjects) // 2:
        raise ValueError(f"{k} folds need at least {2 * k} subjects (each fold 2 or more)")
    return [subjects[i::k] for i in range(k)]


def cross_validate(
    factor: str,
    data: Path,
    *,
    k: int,
    report: Path,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict:
    """Train and evaluate k times; write one report over all held-out comparisons. Returns the summary."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    dataset = factor_module(factor, "dataset")
    trainer = registry.get(factor).submodule("train")
    everyone = [s.subject for s in dataset.load_protocol(data)]
    model_runs: list[Comparison] = []
    base_runs: list[Comparison] = []
    per_fold: list[dict] = []
    name = ""
    for n, held in enumerate(folds(everyone, k), 1):
        train_on = [s for s in everyone if s not in held]
        if progress:
            progress(f"fold {n}/{k}: training on {len(train_on)} subjects, holding out {held}")
        with tempfile.TemporaryDirectory() as tmp:
            extra = {}
            if "out_of_fold" in inspect.signature(trainer.train).parameters:
                extra["out_of_fold"] = False  # calibration does not move a per-subject EER
            trained = trainer.train(data, out=Path(tmp), seed=seed, subjects=train_on, **extra)
            model = load_model(factor, weights=Path(tmp), device=device)
        subjects = dataset.load_protocol(data, held)
        ours = run_protocol(subjects, model)
        base = run_protocol(subjects, baseline_scorer(factor))
        name = model.name
        s_ours, s_base = summarise(name, ours), summarise("baseline", base)
        per_fold.append(
            {
                "fold": n,
                "held_out": held,
                "eer": s_ours.eer,
                "baseline_eer": s_base.eer,
                "scoring": trained.get("scoring"),  # what the training chose, where it chooses
            }
        )
        if progress:
            progress(f"fold {n}/{k}: mean EER {s_ours.eer:.4f} (baseline {s_base.eer:.4f})")
        model_runs += ours
        base_runs += base
    base_label = f"baseline: {baseline_scorer(factor).name}"
    fold_eers = [float(f["eer"]) for f in per_fold]
    method = {
        "held_out": f"{k}-fold by subject, round-robin in data-set order (subject i in fold i mod {k})",
        "training": f"`tacit train {factor}` on the other folds' subjects, seed {seed}",
        "measure": "mean over held-out subjects of each subject's EER (own threshold), one probe per comparison",
        "folds": per_fold,
        "fold_eer_mean": float(np.mean(fold_eers)),
        "fold_eer_sd": float(np.std(fold_eers)),
        "fold_baseline_eer_mean": float(np.mean([float(f["baseline_eer"]) for f in per_fold])),
    }
    summaries = write_report(
        report, factor, {name: model_runs, base_label: base_runs}, data=str(data), method=method
    )
    return {
        "factor": factor,
        "subjects": summaries[name].subjects,
        "eer": summaries[name].eer,
        "baseline_eer": summaries[base_label].eer,
        "comparisons": summaries[name].comparisons,
        **method,
    }
