"""Swipe plaintext schema 1: the phone's swipes, and the features the model reads.

The frame is Tacit's plaintext codec (docs/plaintext.md) with factor ``swipe``:

    points  <f4 [n, P, 3]  per swipe, P touch samples (x px, y px, t ms since touch-down),
                           resampled on the phone at equal time steps, 8 <= P <= max_points
    screen  <f4 [2]        the screen's width and height in px (positions are read relative to it)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pipelines import codec
from pipelines.base import SampleError

FACTOR = "swipe"
SCHEMA = 1
MIN_POINTS = 8
N_FEATURES = 16
SLACK_BYTES = 4 * 1024  # room for small arrays a later schema may add


@dataclass(frozen=True)
class SwipeLimits:
    """What one swipe batch may hold (settings: plaintext.swipe_*), checked before decompressing."""

    max_swipes: int = 256
    max_points: int = 128

    def frame_limits(self) -> codec.FrameLimits:
        per_swipe = self.max_points * 3 * 4
        return codec.FrameLimits(
            max_bytes=self.max_swipes * per_swipe + SLACK_BYTES, check=self.check
        )

    def check(self, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        if name != "points":
            return
        if len(shape) != 3 or shape[2] != 3:
            raise SampleError("swipe_bad_points", "points must be [n, P, 3] (x, y, t)")
        if shape[0] > self.max_swipes:
            raise SampleError("swipe_too_many_swipes", f"{shape[0]} swipes")
        if not MIN_POINTS <= shape[1] <= self.max_points:
            raise SampleError(
                "swipe_bad_points", f"{shape[1]} points per swipe; {MIN_POINTS}..{self.max_points}"
            )


@dataclass(frozen=True)
class Swipes:
    """One batch's swipes: positions relative to the screen (0..1), times in seconds."""

    xy: np.ndarray  # [n, P, 2]
    t: np.ndarray  # [n, P]


def encode_swipes(points: np.ndarray, screen: tuple[float, float]) -> bytes:
    """A plaintext frame as the phone sends it: points [n, P, 3] (px, px, ms)."""
    return codec.encode(
        FACTOR,
        {
            "points": np.asarray(points, dtype="<f4"),
            "screen": np.asarray(screen, dtype="<f4"),
        },
        schema=SCHEMA,
    )


def decode_swipes(plaintext: bytes, limits: SwipeLimits = SwipeLimits()) -> Swipes:
    """Plaintext frame -> swipes; raises PlaintextError or SampleError with a code."""
    frame = codec.decode_factor(plaintext, FACTOR, SCHEMA, limits.frame_limits())
    points, screen = frame.require("points"), frame.require("screen")
    if points.ndim != 3 or points.shape[0] == 0:
        raise SampleError("swipe_empty", "no swipes in the batch")
    if screen.shape != (2,) or not np.all(np.isfinite(screen)) or np.any(screen <= 0):
        raise SampleError("swipe_bad_screen", "screen must be [width, height] > 0")
    p = points.astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise SampleError("swipe_bad_points", "points must be finite")
    t = p[:, :, 2] / 1000.0
    if np.any(np.diff(t, axis=1) <= 0):
        raise SampleError("swipe_bad_points", "the times of a swipe must increase")
    return Swipes(xy=p[:, :, :2] / screen.astype(np.float64), t=t - t[:, :1])


def features(swipes: Swipes) -> np.ndarray:
    """[n, 16] float32 per swipe: where it starts and ends, its shape and its speed profile."""
    xy, t = swipes.xy, swipes.t
    step = np.diff(xy, axis=1)  # [n, P-1, 2]
    seg = np.linalg.norm(step, axis=2)
    path = seg.sum(1) + 1e-6
    disp = xy[:, -1] - xy[:, 0]
    chord = np.linalg.norm(disp, axis=1) + 1e-6
    duration = t[:, -1]
    speed = seg / np.diff(t, axis=1)
    peak = speed.argmax(1)
    heading = np.arctan2(step[:, :, 1], step[:, :, 0])
    turn = np.angle(np.exp(1j * np.diff(heading, axis=1)))  # wrapped to (-pi, pi]
    half = speed.shape[1] // 2
    q1, q3 = np.quantile(speed, [0.25, 0.75], axis=1)
    mean_speed = path / duration
    out = np.stack(
        [
            xy[:, 0, 0],
            xy[:, 0, 1],
            xy[:, -1, 0],
            xy[:, -1, 1],
            np.log(duration),
            np.log(path),
            chord / path,
            disp[:, 1] / chord,
            disp[:, 0] / chord,
            np.log(mean_speed),
            np.log(speed.max(1) + 1e-6),
            peak / max(speed.shape[1] - 1, 1),
            turn.mean(1),
            np.log((speed[:, :half].mean(1) + 1e-6) / (speed[:, half:].mean(1) + 1e-6)),
            q1 / mean_speed,
            q3 / mean_speed,
        ],
        axis=1,
    )
    return out.astype(np.float32)
