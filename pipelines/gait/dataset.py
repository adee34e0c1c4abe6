"""UCI HAPT raw data (Reyes-Ortiz et al.; Anguita et al., ESANN 2013) and the gait protocol.

Files, as released (v2.1): ``acc_expNN_userNN.txt`` (accelerometer, in g) and
``gyro_expNN_userNN.txt`` (gyroscope, rad/s), three columns at 50 Hz, and ``labels.txt``
rows ``experiment user activity start end`` with 1-based, inclusive sample indices.
Walking is activities 1-3 (walking, upstairs, downstairs).

Protocol: windows of 128 samples, hop 64, cut inside each walking segment. A user
enrols with the windows of their first experiment (the lowest-numbered one with walking
windows) and probes with the windows of the others; a user with one experiment enrols
with the first half of its walking segments and probes with the second half. Each user
lends the first 20 of its probe windows to every other user as impostor probes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.evaluation.protocol import EvalSubject
from pipelines.gait.signal import cut_windows, window_starts

WALKING = (1, 2, 3)
IMPOSTOR_PROBES = 20
_FILE = re.compile(r"^acc_exp(\d+)_user(\d+)\.txt$")

# `tacit eval trust`: windows per upload, and the half-lives `--folds` tries for this factor
TRUST_BATCH = 8
HALF_LIFE_GRID = (30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class Segment:
    """One labelled walking segment: [n, 6] samples (acc g, gyro rad/s) at 50 Hz."""

    user: int
    experiment: int
    activity: int
    start: int  # 0-based index of the first sample in the experiment's files
    signal: np.ndarray


def raw_dir(data_dir: Path) -> Path:
    """The folder holding labels.txt: `data_dir` itself, or its HAPT_RawData child."""
    for candidate in (data_dir, data_dir / "HAPT_RawData", data_dir / "gait" / "HAPT_RawData"):
        if (candidate / "labels.txt").is_file():
            return candidate
    raise FileNotFoundError(f"no HAPT labels.txt under {data_dir}")


def subject_name(user: int) -> str:
    return f"user{user:02d}"


def _user_number(subject: str) -> int:
    digits = re.sub(r"\D", "", subject)
    if not digits:
        raise ValueError(f"not a HAPT subject: {subject!r}")
    return int(digits)


def load_segments(
    data_dir: Path, subjects: list[str] | None = None, activities: tuple[int, ...] = WALKING
) -> list[Segment]:
    """Every segment of `activities` (walking by default) of the selected subjects, ordered
    by user, experiment, start."""
    root = raw_dir(Path(data_dir))
    wanted = None if subjects is None else {_user_number(s) for s in subjects}
    files: dict[tuple[int, int], Path] = {}
    for path in root.iterdir():
        m = _FILE.match(path.name)
        if m:
            files[(int(m.group(1)), int(m.group(2)))] = path
    labels = np.loadtxt(root / "labels.txt", dtype=np.int64, ndmin=2)
    signals: dict[tuple[int, int], np.ndarray] = {}
    segments = []
    for exp, user, activity, start, end in sorted(
        labels.tolist(), key=lambda r: (r[1], r[0], r[3])
    ):
        if activity not in activities or (exp, user) not in files:
            continue
        if wanted is not None and user not in wanted:
            continue
        key = (exp, user)
        if key not in signals:
            acc = np.loadtxt(files[key], dtype=np.float64, ndmin=2)
            gyro = np.loadtxt(
                root / f"gyro_exp{exp:02d}_user{user:02d}.txt", dtype=np.float64, ndmin=2
            )
            signals[key] = np.concatenate([acc, gyro], 1)
        segments.append(Segment(user, exp, activity, start - 1, signals[key][start - 1 : end]))
    return segments


def _windows(segments: list[Segment]) -> tuple[np.ndarray, list[str]]:
    inputs, ids = [], []
    for seg in segments:
        starts = window_starts(seg.signal.shape[0])
        if starts.size:
            inputs.append(cut_windows(seg.signal, starts))
            ids += [
                f"{subject_name(seg.user)}/exp{seg.experiment:02d}/{seg.start + s}" for s in starts
            ]
    if not inputs:
        return np.zeros((0, 6, 128), dtype=np.float32), []
    return np.concatenate(inputs), ids


def split_sessions(segments: list[Segment]) -> tuple[list[Segment], list[Segment]]:
    """One user's walking segments -> (enrolment segments, probe segments) by the protocol."""
    usable = [s for s in segments if window_starts(s.signal.shape[0]).size]
    experiments = sorted({s.experiment for s in usable})
    if len(experiments) >= 2:
        first = experiments[0]
        return [s for s in usable if s.experiment == first], [
            s for s in usable if s.experiment != first
        ]
    half = (len(usable) + 1) // 2
    return usable[:half], usable[half:]


def load_protocol(data_dir: Path, subjects: list[str] | None = None) -> list[EvalSubject]:
    """One EvalSubject per HAPT user found in `data_dir`, in user order (see module docstring)."""
    segments = load_segments(data_dir, subjects)
    out = []
    for user in sorted({s.user for s in segments}):
        enrol_segs, probe_segs = split_sessions([s for s in segments if s.user == user])
        enrol, _ = _windows(enrol_segs)
        probes, ids = _windows(probe_segs)
        genuine = [(pid, probes[i : i + 1]) for i, pid in enumerate(ids)]
        out.append(
            EvalSubject(
                subject=subject_name(user),
                enrol=enrol,
                genuine=genuine,
                impostor=genuine[:IMPOSTOR_PROBES],
            )
        )
    return out
