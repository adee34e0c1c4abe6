"""Simulated typists for demos and tests: stable personal rhythm, per-typing jitter.

Population figures are rounded medians of the CMU phrase's hold and up-down times;
each person draws their own times around them, and every typing jitters around the
person's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.keystroke.events import CMU_KEYS, encode_typings

HOLD_MS = np.array([93, 86, 82, 88, 79, 103, 92, 106, 92, 97, 92], dtype=np.float64)
UP_DOWN_MS = np.array([94, 57, 36, 164, 293, 86, 39, 15, 93, 139], dtype=np.float64)


@dataclass(frozen=True)
class Typist:
    hold_ms: np.ndarray  # [11] personal mean hold time per key
    up_down_ms: np.ndarray  # [10] personal mean up-down latency per key pair
    jitter: float  # relative spread of one typing around the personal means


def make_person(seed: int) -> Typist:
    """A typist with their own rhythm, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    hold = HOLD_MS * np.exp(rng.normal(0.0, 0.22, HOLD_MS.shape))
    ud = UP_DOWN_MS + rng.normal(0.0, 70.0, UP_DOWN_MS.shape)
    return Typist(
        hold_ms=hold, up_down_ms=np.maximum(ud, -40.0), jitter=float(rng.uniform(0.08, 0.15))
    )


def timings(person: Typist, rng: np.random.Generator, n: int) -> np.ndarray:
    """n typings as CMU timings in seconds [n, 31] (H, DD, UD per key)."""
    hold = person.hold_ms * np.exp(rng.normal(0.0, person.jitter, (n, len(person.hold_ms))))
    ud = person.up_down_ms + rng.normal(0.0, person.jitter, (n, len(person.up_down_ms))) * (
        np.abs(person.up_down_ms) + 40.0
    )
    ud = np.maximum(ud, -hold[:, :-1] + 5.0)  # a key cannot go down before the previous one
    out = np.empty((n, 3 * len(person.hold_ms) - 2))
    out[:, 0::3] = hold / 1000.0
    out[:, 1::3] = (hold[:, :-1] + ud) / 1000.0
    out[:, 2::3] = ud / 1000.0
    return out


def capture(person: Typist, rng: np.random.Generator, n: int) -> bytes:
    """A keystroke plaintext frame with n typings of the phrase by `person`."""
    return encode_typings(timings(person, rng, n), CMU_KEYS)
