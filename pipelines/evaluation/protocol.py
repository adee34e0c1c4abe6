"""Types shared by every factor's evaluation protocol and the harness.

Each factor package provides ``pipelines.<factor>.dataset.load_protocol(data_dir)``
returning one ``EvalSubject`` per subject, in the public data set's own order, and a
classic baseline implementing ``Scorer``. The harness compares, for every subject
S: S's enrolment against S's genuine probes, and against the impostor probes of
every other subject (``impostor`` holds the probes S lends as an impostor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


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
