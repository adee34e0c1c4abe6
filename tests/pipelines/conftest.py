"""Tiny data sets in the public formats, written into tmp_path by the tests that need them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.keystroke.synthetic import make_person as make_typist
from pipelines.keystroke.synthetic import timings

CMU_HEADER = (
    "subject,sessionIndex,rep,H.period,DD.period.t,UD.period.t,H.t,DD.t.i,UD.t.i,H.i,DD.i.e,UD.i.e,H.e,"
    "DD.e.five,UD.e.five,H.five,DD.five.Shift.r,UD.five.Shift.r,H.Shift.r,DD.Shift.r.o,UD.Shift.r.o,H.o,"
    "DD.o.a,UD.o.a,H.a,DD.a.n,UD.a.n,H.n,DD.n.l,UD.n.l,H.l,DD.l.Return,UD.l.Return,H.Return"
)


def write_cmu_csv(folder: Path, subjects: list[str], reps: int = 400, seed: int = 0) -> Path:
    """A DSL-StrongPasswordData.csv with simulated typists, 8 sessions of reps/8."""
    rng = np.random.default_rng(seed)
    lines = [CMU_HEADER]
    for k, s in enumerate(subjects):
        t = timings(make_typist(seed * 100 + k), rng, reps)
        for r in range(reps):
            session, rep = r // (reps // 8) + 1, r % (reps // 8) + 1
            lines.append(f"{s},{session},{rep}," + ",".join(f"{v:.4f}" for v in t[r]))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "DSL-StrongPasswordData.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pgm(path: Path, image: np.ndarray) -> None:
    h, w = image.shape
    path.write_bytes(
        f"P5\n# made by a test\n{w} {h}\n255\n".encode() + image.astype(np.uint8).tobytes()
    )


def write_orl(
    folder: Path, subjects: list[str], seed: int = 0, size: tuple[int, int] = (112, 92)
) -> Path:
    """An ORL-style tree sN/1.pgm..sN/10.pgm of random images."""
    rng = np.random.default_rng(seed)
    for s in subjects:
        (folder / s).mkdir(parents=True, exist_ok=True)
        for k in range(1, 11):
            write_pgm(folder / s / f"{k}.pgm", rng.integers(0, 256, size))
    return folder


@pytest.fixture
def cmu_dir(tmp_path: Path) -> Path:
    write_cmu_csv(tmp_path / "keystroke", ["s002", "s003", "s004"])
    return tmp_path / "keystroke"


@pytest.fixture
def cmu_dir_4(tmp_path: Path) -> Path:
    """Four subjects: enough for two folds of two."""
    write_cmu_csv(tmp_path / "keystroke4", ["s002", "s003", "s004", "s005"])
    return tmp_path / "keystroke4"


@pytest.fixture
def orl_dir(tmp_path: Path) -> Path:
    return write_orl(tmp_path / "att_faces", ["s1", "s2", "s10"])
