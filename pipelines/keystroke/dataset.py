"""CMU Keystroke Dynamics Benchmark (Killourhy & Maxion, DSN 2009): the evaluation protocol.

Per subject, in file order: enrol on reps 1-200, genuine probes reps 201-400; the
subject lends its first 5 reps as impostor probes to every other subject. Rows are
turned back into key events and go through the pipeline's own decode -> preprocess.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from pipelines.evaluation.protocol import EvalSubject, select_subjects
from pipelines.keystroke.events import N_FEATURES, decode_typings, encode_typings, features

FILENAME = "DSL-StrongPasswordData.csv"
ENROL, GENUINE, IMPOSTOR = 200, 200, 5

# `tacit eval trust`: typings per upload, and the half-lives `--folds` tries for this factor
TRUST_BATCH = 5
HALF_LIFE_GRID = (30.0, 60.0, 120.0, 300.0, 900.0, 1800.0)


def find_csv(data_dir: Path) -> Path:
    """The CSV itself, the folder holding it, or a parent with a keystroke/ folder."""
    data_dir = Path(data_dir)
    for p in (data_dir, data_dir / FILENAME, data_dir / "keystroke" / FILENAME):
        if p.is_file():
            return p
    raise FileNotFoundError(f"{FILENAME} not found in {data_dir}")


def read_subjects(data_dir: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """subject -> (row ids "session.rep", timings [reps, 31] in seconds), in file order."""
    path = find_csv(data_dir)
    rows: dict[str, tuple[list[str], list[list[float]]]] = {}
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if (
            not header
            or header[:3] != ["subject", "sessionIndex", "rep"]
            or len(header) != 3 + N_FEATURES
        ):
            raise ValueError(f"{path} is not the CMU DSL-StrongPasswordData.csv format")
        for r in reader:
            if not r:
                continue
            ids, vals = rows.setdefault(r[0], ([], []))
            ids.append(f"{r[1]}.{r[2]}")
            vals.append([float(v) for v in r[3:]])
    return {s: (ids, np.asarray(v)) for s, (ids, v) in rows.items()}


def model_inputs(timings: np.ndarray) -> np.ndarray:
    """CMU timings -> events -> plaintext -> the pipeline's decode and preprocess."""
    return features(decode_typings(encode_typings(timings)))


def load_protocol(data_dir: Path, subjects: list[str] | None = None) -> list[EvalSubject]:
    """One EvalSubject per subject (file order), optionally only `subjects`."""
    out = []
    for s, (ids, timings) in select_subjects(read_subjects(data_dir), subjects).items():
        if len(ids) < ENROL + GENUINE:
            raise ValueError(
                f"subject {s} has {len(ids)} reps; the protocol needs {ENROL + GENUINE}"
            )
        x = model_inputs(timings)
        out.append(
            EvalSubject(
                subject=s,
                enrol=x[:ENROL],
                genuine=[(f"{s}:{ids[k]}", x[k : k + 1]) for k in range(ENROL, ENROL + GENUINE)],
                impostor=[(f"{s}:{ids[k]}", x[k : k + 1]) for k in range(IMPOSTOR)],
            )
        )
    return out
