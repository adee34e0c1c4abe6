"""Gait signals: validation, resampling to 50 Hz and cutting into walking windows.

Model inputs are windows ``[n, 6, 128]`` float32: accelerometer x, y, z in g, then
gyroscope x, y, z in rad/s, at 50 Hz (2.56 s per window), cut with a hop of 64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pipelines import codec
from pipelines.base import SampleError

RATE_HZ = 50.0
WINDOW = 128
HOP = 64
CHANNELS = 6
STANDARD_GRAVITY = 9.80665  # m/s^2 per g
MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 1000.0
MAX_WINDOWS = 1024  # about 11 minutes of walking: the most a setting may allow per batch
DEFAULT_MAX_WINDOWS = 256  # about 2.7 minutes: at 1000 Hz a job then peaks near 70 MB
SLACK_BYTES = 64 * 1024  # room for small arrays a later schema may add


@dataclass(frozen=True)
class GaitLimits:
    """What one gait batch may hold (settings: plaintext.gait_max_windows), checked before
    decompressing: the raw samples that could resample to at most `max_windows` windows."""

    max_windows: int = DEFAULT_MAX_WINDOWS

    @property
    def max_samples_50hz(self) -> int:
        return (self.max_windows - 1) * HOP + WINDOW + HOP - 1

    @property
    def max_raw_samples(self) -> int:
        return int(self.max_samples_50hz * MAX_RATE_HZ / RATE_HZ) + 1

    def frame_limits(self) -> codec.FrameLimits:
        per_sample = 3 * 8 + 3 * 8 + 8  # acc and gyro [T, 3] at <f8, t [T] <f8
        return codec.FrameLimits(
            max_bytes=self.max_raw_samples * per_sample + SLACK_BYTES, check=self.check
        )

    def check(self, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        if name in ("acc", "gyro"):
            if len(shape) != 2 or shape[1] != 3:
                raise SampleError("gait_bad_shape", f"{name} must be [T, 3], got {list(shape)}")
        elif name == "t":
            if len(shape) > 2:
                raise SampleError("gait_bad_timestamps", "t must be [T]")
        elif name == "rate_hz":
            if math.prod(shape) != 1:
                raise SampleError("gait_bad_rate", "rate_hz must be one number")
            return
        else:
            return
        if shape and shape[0] > self.max_raw_samples:
            raise codec.PlaintextError(
                "plaintext_too_large",
                f"{name} has {shape[0]} samples; at most {self.max_raw_samples} per batch",
            )


@dataclass(frozen=True)
class GaitRecording:
    """A walking recording at 50 Hz: ``acc`` in g, ``gyro`` in rad/s, both [T, 3] float64."""

    acc: np.ndarray
    gyro: np.ndarray

    @property
    def samples(self) -> int:
        return int(self.acc.shape[0])


def _check_triaxial(name: str, a: np.ndarray) -> None:
    if a.ndim != 2 or a.shape[1] != 3:
        raise SampleError("gait_bad_shape", f"{name} must be [T, 3], got {list(a.shape)}")
    if not np.issubdtype(a.dtype, np.floating):
        raise SampleError("gait_bad_dtype", f"{name} must be float, got {a.dtype}")
    if not np.isfinite(a).all():
        raise SampleError("gait_not_finite", f"{name} holds NaN or infinite values")


def _low_pass(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """Moving average over one 50 Hz sample period, so downsampling does not alias."""
    width = int(round(rate_hz / RATE_HZ))
    if width <= 1:
        return x
    # repeat the edge samples so the ends are not pulled towards zero
    before, after = width // 2, width - 1 - width // 2
    padded = np.concatenate([np.repeat(x[:1], before, 0), x, np.repeat(x[-1:], after, 0)])
    # every channel at once, as a sum of `width` shifted copies
    n = x.shape[0]
    out = padded[:n].copy()
    for k in range(1, width):
        out += padded[k : k + n]
    out /= width
    return out


def resample(
    x: np.ndarray, rate_hz: float, t: np.ndarray | None = None, *, target_hz: float = RATE_HZ
) -> np.ndarray:
    """Resample [T, C] samples taken at `rate_hz` (or at times `t`, seconds) to `target_hz`.

    Linear interpolation as ``np.interp`` does it, for every channel at once.
    """
    n = x.shape[0]
    times = np.arange(n) / rate_hz if t is None else t.astype(np.float64) - float(t[0])
    if rate_hz == target_hz and t is None:
        return x
    if n < 2:
        return x[:1].astype(np.float64)
    if rate_hz > target_hz:
        x = _low_pass(x, rate_hz)
    grid = np.arange(0.0, times[-1] + 1e-9, 1.0 / target_hz)
    grid = np.minimum(grid, times[-1])  # the last point may overshoot by the 1e-9 above
    left = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, n - 2)
    frac = (grid - times[left]) / (times[left + 1] - times[left])
    lo, out = np.take(x, left, axis=0), np.take(x, left + 1, axis=0)
    out -= lo
    out *= frac[:, None]
    out += lo
    return out


def recording_from_arrays(
    acc_ms2: np.ndarray,
    gyro: np.ndarray,
    rate_hz: float,
    t: np.ndarray | None = None,
    *,
    max_windows: int = DEFAULT_MAX_WINDOWS,
) -> GaitRecording:
    """Validate raw phone arrays (acc in m/s^2, gyro in rad/s) and bring them to 50 Hz, g."""
    _check_triaxial("acc", acc_ms2)
    _check_triaxial("gyro", gyro)
    n = acc_ms2.shape[0]
    if n != gyro.shape[0]:
        raise SampleError("gait_length_mismatch", f"acc has {n} samples, gyro {gyro.shape[0]}")
    if not np.isfinite(rate_hz) or not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise SampleError(
            "gait_bad_rate", f"rate_hz {rate_hz} is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz"
        )
    if t is not None:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if t.shape[0] != n:
            raise SampleError("gait_length_mismatch", f"t has {t.shape[0]} samples")
        if not np.isfinite(t).all() or (t.shape[0] > 1 and np.any(np.diff(t) <= 0)):
            raise SampleError("gait_bad_timestamps", "timestamps must be finite and increasing")
    if n < 2:
        raise SampleError("gait_too_short", "fewer than two samples")
    # The 50 Hz grid's length follows the duration, not the sample count: two samples
    # a year apart must be refused here, before the grid is built.
    duration_s = float(t[-1] - t[0]) if t is not None else (n - 1) / rate_hz
    longest = GaitLimits(max_windows).max_samples_50hz
    if duration_s * RATE_HZ + 1 > longest:
        raise SampleError(
            "gait_too_long", f"{duration_s:.0f} s of walking; at most {max_windows} windows"
        )
    both = np.empty((n, 6))  # float64 from here on
    both[:, :3] = acc_ms2
    both[:, :3] /= STANDARD_GRAVITY
    both[:, 3:] = gyro
    both = resample(both, rate_hz, t)
    return GaitRecording(acc=both[:, :3], gyro=both[:, 3:])


def window_starts(n_samples: int, window: int = WINDOW, hop: int = HOP) -> np.ndarray:
    """Start indices of every full window in a run of `n_samples`."""
    if n_samples < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def cut_windows(signal: np.ndarray, starts: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """[T, 6] signal and window starts -> model inputs [n, 6, window] float32."""
    idx = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(signal[idx].transpose(0, 2, 1), dtype=np.float32)


def windows(recording: GaitRecording, max_windows: int = DEFAULT_MAX_WINDOWS) -> np.ndarray:
    """A 50 Hz recording -> model inputs [n_windows, 6, 128] (raises gait_too_short/too_long)."""
    starts = window_starts(recording.samples)
    if starts.size == 0:
        raise SampleError(
            "gait_too_short",
            f"{recording.samples} samples at 50 Hz; one window needs {WINDOW}",
        )
    if starts.size > max_windows:
        raise SampleError("gait_too_long", f"{starts.size} windows; at most {max_windows}")
    signal = np.concatenate([recording.acc, recording.gyro], 1)
    # [n, 6, WINDOW] views, one every HOP samples (the starts above), copied once as float32
    views = sliding_window_view(signal, WINDOW, axis=0)[::HOP]
    return np.ascontiguousarray(views, dtype=np.float32)
