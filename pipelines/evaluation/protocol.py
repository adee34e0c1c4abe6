"""Types shared by every factor's evaluation protocol and the harness.

Each factor package provides ``pipelines.<factor>.dataset.load_protocol(data_dir)``
returning one ``EvalSubject`` per subject, in the public data set's own order, and a
classic baseline implementing ``Scorer``. The harness compares, for every subject
S: S's enrolment against S's genuine probes, and against the impostor probes of
every other subject (``impostor`` holds the probes S lends as an impostor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class EvalSubject:
    subject: str
    enrol: np.ndarray  # model inputs [n_enrol, ...] (float32), preprocessed
    genuine: list[tuple[str, np.ndarray]]  # (probe id, model input [1, ...]) of this subject
    impostor: list[tuple[str, np.ndarray]]  # probes this subject lends to others as an impostor


class Scorer(Protocol):
    """Anything that builds a template from inputs and scores probes (higher = more genuine)."""

    name: str

    def fit(self, enrol: np.ndarray) -> object: ...

    def score(self, state: object, probes: np.ndarray) -> np.ndarray: ...


def select_subjects(table: dict[str, T], subjects: list[str] | None) -> dict[str, T]:
    """`table`'s entries of `subjects` in the table's order (all when None); a subject not in
    the table is a ValueError."""
    if subjects is None:
        return table
    missing = [s for s in subjects if s not in table]
    if missing:
        raise ValueError(f"subjects not in the data: {', '.join(missing)}")
    return {s: v for s, v in table.items() if s in subjects}
