"""Simulated walkers for demos and tests: stable personal gait traits, noisy captures.

A walk is a sum of harmonics of the stride frequency on every axis; each person has
their own cadence, harmonic amplitudes and phases, and phone orientation, and each
capture varies them a little (pace, sway, how the phone sits) and adds sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.codec import encode
from pipelines.gait.signal import HOP, STANDARD_GRAVITY, WINDOW

HARMONICS = 4
RATES_HZ = (50.0, 100.0)


@dataclass(frozen=True)
class Walker:
    """Stable traits of one simulated person."""

    stride_hz: float  # strides per second (two steps per stride)
    acc_amp: np.ndarray  # [3, HARMONICS] m/s^2
    acc_phase: np.ndarray  # [3, HARMONICS] radians
    gyro_amp: np.ndarray  # [3, HARMONICS] rad/s
    gyro_phase: np.ndarray  # [3, HARMONICS]
    tilt: np.ndarray  # [3] phone orientation (axis-angle), radians


def make_person(seed: int) -> Walker:
    """A walker whose traits are fixed by `seed`."""
    rng = np.random.default_rng(seed)
    # steps dominate the even harmonics of the stride, sway the odd ones
    weights = np.array([0.5, 1.0, 0.35, 0.5])
    return Walker(
        stride_hz=float(rng.uniform(0.8, 1.05)),
        acc_amp=rng.uniform(0.3, 2.5, size=(3, HARMONICS)) * weights,
        acc_phase=rng.uniform(0, 2 * math.pi, size=(3, HARMONICS)),
        gyro_amp=rng.uniform(0.05, 0.6, size=(3, HARMONICS)) * weights,
        gyro_phase=rng.uniform(0, 2 * math.pi, size=(3, HARMONICS)),
        tilt=rng.normal(0, 0.3, size=3),
    )


def _rotation(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    a = v / angle
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _harmonics(
    t: np.ndarray, phase_t: np.ndarray, amp: np.ndarray, phase: np.ndarray
) -> np.ndarray:
    h = np.arange(1, HARMONICS + 1)
    angles = h[None, None, :] * phase_t[:, None, None] + phase[None, :, :]
    return (amp[None, :, :] * np.sin(angles)).sum(-1)  # [T, 3]


def capture(person: object, rng: np.random.Generator, n: int) -> bytes:
    """A gait plaintext frame holding about `n` windows of `person` walking."""
    if not isinstance(person, Walker):
        raise TypeError("capture expects a Walker from make_person")
    rate = float(rng.choice(RATES_HZ))
    seconds = (WINDOW + (max(n, 1) - 1) * HOP) / 50.0 + 0.1
    t = np.arange(int(seconds * rate)) / rate
    # this capture's pace, with a slow drift within it
    stride = person.stride_hz * rng.uniform(0.97, 1.03)
    drift = 1 + 0.02 * np.sin(2 * math.pi * t / rng.uniform(8, 20) + rng.uniform(0, 6.3))
    phase_t = 2 * math.pi * np.cumsum(stride * drift) / rate
    scale = rng.uniform(0.92, 1.08)
    acc = scale * _harmonics(t, phase_t, person.acc_amp, person.acc_phase)
    gyro = scale * _harmonics(t, phase_t, person.gyro_amp, person.gyro_phase)
    orientation = _rotation(person.tilt + rng.normal(0, 0.05, size=3))
    acc = (acc + np.array([0.0, 0.0, STANDARD_GRAVITY])) @ orientation.T
    gyro = gyro @ orientation.T
    acc += rng.normal(0, 0.15, size=acc.shape)
    gyro += rng.normal(0, 0.02, size=gyro.shape)
    return encode(
        "gait",
        {
            "acc": acc.astype("<f4"),
            "gyro": gyro.astype("<f4"),
            "rate_hz": np.array(rate, dtype="<f4"),
        },
    )
