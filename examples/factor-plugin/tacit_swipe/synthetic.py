"""Simulated swipers for demos, warm-up and training: a personal swipe-up habit, per-swipe jitter.

Each person swipes up from their own spot near the bottom of their own phone's screen,
with their own length, lean, bend, duration and speed profile (where in the swipe
they are fastest); every swipe jitters around those habits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tacit_swipe.gestures import encode_swipes

POINTS = 32  # touch samples per swipe, resampled at equal time steps on the phone
SCREENS = ((1080.0, 2400.0), (1170.0, 2532.0), (1440.0, 3200.0), (720.0, 1600.0))


@dataclass(frozen=True)
class Swiper:
    screen: tuple[float, float]  # px
    start: np.ndarray  # [2] mean touch-down point, relative to the screen
    length: float  # mean swipe length, fraction of the screen's height
    lean: float  # radians off vertical (positive: to the right)
    bend: float  # sideways bow of the path, fraction of its length
    duration_s: float
    peak: float  # where in the swipe the finger is fastest, 0..1
    jitter: float  # relative spread of one swipe around the habits


def make_person(seed: int) -> Swiper:
    """A swiper with their own habits, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return Swiper(
        screen=SCREENS[int(rng.integers(len(SCREENS)))],
        start=np.array([rng.uniform(0.3, 0.7), rng.uniform(0.75, 0.95)]),
        length=float(rng.uniform(0.25, 0.6)),
        lean=float(rng.normal(0.0, 0.25)),
        bend=float(rng.normal(0.0, 0.08)),
        duration_s=float(np.exp(rng.normal(np.log(0.25), 0.35))),
        peak=float(rng.uniform(0.3, 0.7)),
        jitter=float(rng.uniform(0.06, 0.12)),
    )


def _progress(peak: float, u: np.ndarray) -> np.ndarray:
    """Fraction of the path covered at times u (0..1): a bell-shaped speed peaking at `peak`."""
    fine = np.linspace(0.0, 1.0, 257)
    a = 1.0 + 4.0 * peak
    b = 1.0 + 4.0 * (1.0 - peak)
    speed = fine ** (a - 1.0) * (1.0 - fine) ** (b - 1.0) + 1e-3
    covered = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2.0)])
    return np.interp(u, fine, covered / covered[-1])


def points(person: Swiper, rng: np.random.Generator, n: int) -> np.ndarray:
    """n swipes as the phone records them: [n, POINTS, 3] (x px, y px, t ms)."""
    j = person.jitter
    w, h = person.screen
    out = np.empty((n, POINTS, 3))
    u = np.linspace(0.0, 1.0, POINTS)
    for i in range(n):
        start = person.start + rng.normal(0.0, j * 0.15, 2)
        length = person.length * np.exp(rng.normal(0.0, j))
        lean = person.lean + rng.normal(0.0, j)
        bend = person.bend + rng.normal(0.0, j * 0.3)
        duration = person.duration_s * np.exp(rng.normal(0.0, j))
        peak = float(np.clip(person.peak + rng.normal(0.0, j), 0.1, 0.9))
        s = _progress(peak, u)
        up = np.array([np.sin(lean), -np.cos(lean)])  # screen y grows downwards
        side = np.array([-up[1], up[0]])
        rel = s[:, None] * up * length + (4.0 * bend * length * s * (1.0 - s))[:, None] * side
        xy = (start + rel * np.array([h / w, 1.0])) * np.array([w, h])
        xy = xy + rng.normal(0.0, 1.5, xy.shape)  # touch noise, px
        out[i, :, :2] = np.clip(xy, 0.0, [w - 1.0, h - 1.0])  # a touch stays on the screen
        out[i, :, 2] = u * duration * 1000.0
    return out


def capture(person: Swiper, rng: np.random.Generator, n: int) -> bytes:
    """A swipe plaintext frame with n swipes by `person`."""
    return encode_swipes(points(person, rng, n), person.screen)
