"""Summaries of a protocol run and the written report (report.json, report.md, det.png)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np

from pipelines.evaluation.harness import Comparison
from pipelines.evaluation.metrics import eer, error_curve, fnmr_at_fmr


@dataclass(frozen=True)
class Summary:
    """Error rates of one scorer: per-subject EERs (own threshold each) and pooled FNMR at fixed FMR."""

    name: str
    subjects: int
    comparisons: int
    genuine: int
    impostor: int
    eer: float  # mean of the per-subject EERs (the CMU convention)
    eer_sd: float
    pooled_eer: float  # one global threshold over all comparisons
    fnmr_at_fmr_1pct: float
    fnmr_at_fmr_01pct: float
    per_subject_eer: dict[str, float] = field(default_factory=dict)


def split_scores(comparisons: list[Comparison]) -> tuple[np.ndarray, np.ndarray]:
    g = np.array([c.score for c in comparisons if c.genuine])
    i = np.array([c.score for c in comparisons if not c.genuine])
    return g, i


def summarise(name: str, comparisons: list[Comparison]) -> Summary:
    """Compute the report's figures for one scorer's comparisons."""
    by_subject: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_subject[c.claimed].append(c)
    per = {s: eer(*split_scores(cs)) for s, cs in by_subject.items()}
    g, i = split_scores(comparisons)
    vals = np.array(list(per.values()))
    return Summary(
        name=name,
        subjects=len(per),
        comparisons=len(comparisons),
        genuine=int(g.size),
        impostor=int(i.size),
        eer=float(vals.mean()),
        eer_sd=float(vals.std()),
        pooled_eer=eer(g, i),
        fnmr_at_fmr_1pct=fnmr_at_fmr(g, i, 0.01),
        fnmr_at_fmr_01pct=fnmr_at_fmr(g, i, 0.001),
        per_subject_eer=per,
    )


def _det_plot(path: Path, runs: dict[str, list[Comparison]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probit = NormalDist().inv_cdf
    lo, hi = 1e-4, 0.5

    def axis(p: np.ndarray) -> np.ndarray:
        return np.array([probit(float(v)) for v in np.clip(p, lo, 1 - lo)])

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for name, comps in runs.items():
        _, fmr, fnmr = error_curve(*split_scores(comps))
        ax.plot(axis(fmr), axis(fnmr), label=name)
    ticks = np.array([1e-3, 1e-2, 0.05, 0.1, 0.2, 0.4])
    ax.set_xticks(axis(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(axis(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(probit(5e-4), probit(hi))
    ax.set_ylim(probit(5e-4), probit(hi))
    ax.plot([probit(5e-4), probit(hi)], [probit(5e-4), probit(hi)], ls=":", c="grey", lw=0.8)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    out: Path,
    factor: str,
    runs: dict[str, list[Comparison]],
    *,
    data: str,
    method: dict | None = None,
) -> dict[str, Summary]:
    """Write report.json, report.md and det.png for each scorer's comparisons into `out`.

    `method` says how the comparisons were made (e.g. which subjects were held out).
    """
    out.mkdir(parents=True, exist_ok=True)
    summaries = {name: summarise(name, comps) for name, comps in runs.items()}
    (out / "report.json").write_text(
        json.dumps(
            {
                "factor": factor,
                "data": data,
                **({"method": method} if method else {}),
                "scorers": {k: asdict(v) for k, v in summaries.items()},
            },
            indent=2,
        )
        + "\n"
    )
    names = list(summaries)
    lines = [
        f"# Evaluation report: {factor}",
        "",
        f"Data: `{data}`. EER is the mean of per-subject EERs (each subject at its own threshold);",
        "FNMR at a fixed FMR uses one global threshold over all comparisons.",
        "",
        *(
            [f"Held out: {method['held_out']}; training: {method['training']}.", ""]
            if method and "held_out" in method
            else []
        ),
        "| scorer | subjects | genuine | impostor | mean EER | sd | pooled EER | FNMR@FMR 1% | FNMR@FMR 0.1% |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in summaries.values():
        lines.append(
            f"| {s.name} | {s.subjects} | {s.genuine} | {s.impostor} | {s.eer:.4f} | {s.eer_sd:.4f} | "
            f"{s.pooled_eer:.4f} | {s.fnmr_at_fmr_1pct:.4f} | {s.fnmr_at_fmr_01pct:.4f} |"
        )
    lines += [
        "",
        "## Per-subject EER",
        "",
        "| subject | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for subj in summaries[names[0]].per_subject_eer:
        row = " | ".join(
            f"{summaries[n].per_subject_eer.get(subj, float('nan')):.4f}" for n in names
        )
        lines.append(f"| {subj} | {row} |")
    lines += ["", "![DET curve](det.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    _det_plot(out / "det.png", runs, f"DET: {factor}")
    return summaries
