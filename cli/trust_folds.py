"""Trust over sessions on users no model saw: every factor retrained per subject fold.

The chimeric users are split round-robin into k folds (user i in fold i mod k). For
each fold, every factor is trained (``tacit train``, committed hyper-parameters and
calibration) on all of its data set's subjects except those paired into that fold,
and the fold's sessions (genuine, and takeovers by the fold's other users, so the
impostors are unseen too) are scored by those models. The result is one file of
out-of-fold evidence per upload, which the fusion tuning (cli/trust_tuning.py) reads.
"""

from __future__ import annotations

import csv
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import factors as registry
from core.trust.evaluation import (
    UPLOAD_COLUMNS,
    Upload,
    build_sessions,
    read_rows,
    trust_factors,
    upload_cells,
    upload_fields,
)

COLUMNS = ("fold", *UPLOAD_COLUMNS, "score", "llr")


@dataclass(frozen=True)
class Evidence:
    """One upload of a fold's session with the score and llr its fold's model gave it."""

    fold: int
    upload: Upload
    score: float
    llr: float


def fold_evidence(
    data: Path,
    *,
    k: int,
    batch: dict[str, int],
    interval_s: float,
    work: Path,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[str], None] = print,
    retrain: tuple[str, ...] | None = None,
    calibrate_on_training: bool = False,
) -> list[Evidence]:
    """Train per fold (weights kept under `work/fold-N/FACTOR`, reused when present) and score.

    Factors not in `retrain` use their committed weights in every fold (cheaper; those
    models may have seen the fold's subjects, which the caller must say).
    `calibrate_on_training` fits the calibration on the training subjects instead of out
    of fold, where the trainer offers it (one training instead of three: faster, but
    the llrs are more confident than the committed weights').
    """
    import torch

    from core.trust.evaluation import pair_subjects
    from pipelines.evaluation.chimeric import load_chimeric, subjects_of

    torch.set_num_threads(min(2, torch.get_num_threads()))
    subjects = {f: subjects_of(f, data) for f in trust_factors()}
    pairs = pair_subjects({f: [s.subject for s in subs] for f, subs in subjects.items()})
    if not 2 <= k <= len(pairs) // 2:
        raise ValueError(f"{k} folds need at least {2 * k} chimeric users (have {len(pairs)})")
    out: list[Evidence] = []
    session_base = 0
    for fold in range(k):
        members = pairs[fold::k]
        weights = {}
        for factor in trust_factors() if retrain is None else retrain:
            held = {p[factor] for p in members}
            train_on = [s.subject for s in subjects[factor] if s.subject not in held]
            folder = work / f"fold-{fold + 1}" / factor
            if not (folder / "model.safetensors").is_file():
                progress(f"fold {fold + 1}/{k}: training {factor} on {len(train_on)} subjects")
                trainer = registry.get(factor).submodule("train")
                extra = {}
                if (
                    calibrate_on_training
                    and "out_of_fold" in inspect.signature(trainer.train).parameters
                ):
                    extra["out_of_fold"] = False
                trainer.train(data, out=folder, seed=seed, subjects=train_on, **extra)
            weights[factor] = folder
        progress(f"fold {fold + 1}/{k}: scoring the sessions of {len(members)} unseen users")
        prepared = load_chimeric(
            data,
            members,
            {f: subjects[f] for f in trust_factors()},
            batch_size=batch,
            weights=weights,
            device=device,
        )
        available = [
            {f: len(prepared[f].batches[u]) for f in trust_factors()} for u in range(len(members))
        ]
        for u in build_sessions(available, interval_s=interval_s):
            v = prepared[u.factor].verify(u.user, u.source, u.batch)
            # users and sessions renumbered globally: fold-local index -> chimeric user index
            g = Upload(
                session_base + u.session,
                fold + k * u.user,
                u.kind,
                u.step,
                u.t_s,
                u.factor,
                u.impostor,
                fold + k * u.source,
                u.batch,
            )
            out.append(Evidence(fold, g, float(v.score), float(v.llr)))
        session_base = max(e.upload.session for e in out) + 1
    return out


def write_evidence(path: Path, evidence: list[Evidence]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for e in evidence:
            w.writerow([e.fold, *upload_cells(e.upload), repr(e.score), repr(e.llr)])


def read_evidence(path: Path) -> list[Evidence]:
    return [
        Evidence(
            int(r["fold"]),
            Upload(*upload_fields(r), -1, -1),
            float(r["score"]),
            float(r["llr"]),
        )
        for r in read_rows(path, COLUMNS, "a fold-evidence file")
    ]
