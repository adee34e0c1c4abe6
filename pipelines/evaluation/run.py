"""One evaluation run: a factor's model and its baseline on the same comparisons."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import torch

from core import factors as registry
from pipelines.evaluation.harness import (
    PipelineScorer,
    Progress,
    factor_module,
    run_protocol,
    write_scores,
)
from pipelines.evaluation.protocol import EvalSubject, Scorer
from pipelines.evaluation.report import summarise, write_report


def baseline_scorer(factor: str) -> Scorer:
    """The factor's classic baseline: the class its ``BASELINE`` names, else the module's first Scorer."""
    module = factor_module(factor, "baseline")
    name = getattr(module, "BASELINE", None)
    if name is None:
        name = next(
            n
            for n, v in vars(module).items()
            if inspect.isclass(v)
            and not n.startswith("_")
            and hasattr(v, "fit")
            and hasattr(v, "score")
        )
    scorer: Scorer = getattr(module, name)()
    return scorer


def load_model(factor: str, *, weights: Path | None, device: str) -> PipelineScorer:
    """The factor's pipeline as a Scorer, from the committed weights or a weights folder."""
    package = importlib.import_module(registry.get(factor).module)
    if weights is not None:
        if not (weights / "model.safetensors").is_file():
            raise FileNotFoundError(f"no model.safetensors in {weights}")
        pipeline = package.load(device=device, weights_dir=weights)
    else:
        pipeline = package.load(device=device)
    return PipelineScorer(pipeline)


def evaluate(
    factor: str,
    subjects: list[EvalSubject],
    *,
    scores_out: Path,
    report: Path | None = None,
    weights: Path | None = None,
    device: str = "cpu",
    data: str = "",
    progress: Progress | None = None,
) -> dict:
    """Score the protocol with the model and the baseline; write scores (and a report). Returns the summary."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = load_model(factor, weights=weights, device=device)
    ours = run_protocol(subjects, model, progress)
    write_scores(scores_out, ours)
    baseline = baseline_scorer(factor)
    base = run_protocol(subjects, baseline, progress)
    base_label = f"baseline: {baseline.name}"
    if report is not None:
        summaries = write_report(report, factor, {model.name: ours, base_label: base}, data=data)
        s_ours, s_base = summaries[model.name], summaries[base_label]
    else:
        s_ours, s_base = summarise(model.name, ours), summarise(base_label, base)
    return {
        "factor": factor,
        "subjects": s_ours.subjects,
        "eer": s_ours.eer,
        "baseline_eer": s_base.eer,
        "comparisons": s_ours.comparisons,
    }
