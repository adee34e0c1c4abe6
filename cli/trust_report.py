"""The trust evaluation's report folder: report.json, report.md, trust.png and det.png."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from core.trust.evaluation import LockoutFigures, TraceRow
from pipelines.evaluation.metrics import eer, error_curve


def trust_scores(rows: list[TraceRow]) -> tuple[np.ndarray, np.ndarray]:
    """Fused trust after genuine uploads of genuine sessions, and after impostor uploads."""
    genuine = np.array([r.trust for r in rows if r.kind == "genuine"])
    impostor = np.array([r.trust for r in rows if r.impostor])
    return genuine, impostor


def write_trust_report(
    folder: Path,
    rows: list[TraceRow],
    result: dict[str, Any],
    *,
    details: dict[str, LockoutFigures],
    setup: dict[str, Any],
    rng: random.Random,
) -> None:
    """Everything `tacit eval trust --report DIR` writes (the /ops dashboard reads report.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    genuine, impostor = trust_scores(rows)
    trust_eer = eer(genuine, impostor) if genuine.size and impostor.size else None
    report = {
        **result,
        "details": {k: asdict(v) for k, v in details.items()},
        "trust_eer": trust_eer,
        "setup": setup,
    }
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Trust over sessions",
        "",
        f"{result['users']} chimeric users, {result['sessions']} sessions, {result['uploads']} uploads; "
        f"one upload every {setup['interval_s']:g} s, lock below {setup['threshold']:g}.",
        "",
        "| trust from | ANIA (uploads) | takeovers detected | false lockouts / 1000 | ANGA | mean time to detection (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in details.items():
        t = "-" if f.mean_detection_s is None else f"{f.mean_detection_s:.0f}"
        lines.append(
            f"| {name} | {f.ania:.2f} | {f.detected:.3f} ({f.takeovers}) | "
            f"{f.false_lockouts_per_1000:.2f} | {f.anga:.1f} | {t} |"
        )
    if trust_eer is not None:
        lines += ["", f"EER of the fused trust (genuine vs impostor uploads): {trust_eer:.4f}"]
    (folder / "report.md").write_text("\n".join(lines) + "\n")
    _trust_plot(folder / "trust.png", rows, setup["threshold"], rng)
    if genuine.size and impostor.size:
        _det_plot(folder / "det.png", genuine, impostor)


def _trust_plot(path: Path, rows: list[TraceRow], threshold: float, rng: random.Random) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sessions: dict[int, list[TraceRow]] = defaultdict(list)
    for r in rows:
        sessions[r.session].append(r)
    genuine = sorted(s for s, t in sessions.items() if t[0].kind == "genuine")
    takeover = sorted(s for s, t in sessions.items() if t[0].kind == "takeover")
    chosen = rng.sample(genuine, min(2, len(genuine))) + rng.sample(takeover, min(3, len(takeover)))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for s in chosen:
        t = sorted(sessions[s], key=lambda r: r.step)
        label = f"user {t[0].user} {t[0].kind}"
        line = ax.plot([r.t_s / 60 for r in t], [r.trust for r in t], marker=".", label=label)[0]
        taken = next((r for r in t if r.impostor), None)
        if taken is not None:
            ax.axvline(taken.t_s / 60, color=line.get_color(), ls=":", lw=0.8)
    ax.axhline(threshold, color="grey", ls="--", lw=0.8, label="lock threshold")
    ax.set_xlabel("minutes into the session (dotted: first impostor upload)")
    ax.set_ylabel("fused trust")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _det_plot(path: Path, genuine: np.ndarray, impostor: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probit = NormalDist().inv_cdf
    lo, hi = 5e-4, 0.5
    _, fmr, fnmr = error_curve(genuine, impostor)

    def axis(p: np.ndarray) -> np.ndarray:
        return np.array([probit(float(v)) for v in np.clip(p, 1e-4, 1 - 1e-4)])

    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot(axis(fmr), axis(fnmr), label="fused trust, per upload")
    ticks = np.array([1e-3, 1e-2, 0.05, 0.1, 0.2, 0.4])
    ax.set_xticks(axis(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(axis(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(probit(lo), probit(hi))
    ax.set_ylim(probit(lo), probit(hi))
    ax.set_xlabel("impostor uploads accepted (FMR)")
    ax.set_ylabel("genuine uploads rejected (FNMR)")
    ax.set_title("DET of the fused trust")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
