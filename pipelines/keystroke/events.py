"""Keystroke plaintext schema 1: key events, their typings, and the timing features.

Arrays (see docs/plaintext.md):
    key     <u2 [E]  key code of each event (Android KeyEvent codes by convention)
    down    <f8 [E]  key-down time, ms since capture start
    up      <f8 [E]  key-up time, ms since capture start
    sample  <u4 [E]  index (0..n-1) of the typing each event belongs to
    text    <u4 [n]  optional, per typing: the fixed phrase id (>= 1), or 0 for free text
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines import codec
from pipelines.base import SampleError

FACTOR = "keystroke"
SCHEMA = 1
FREE_TEXT = 0
MAX_EVENTS = 100_000
# The CMU phrase ".tie5Roanl" + Return, as Android key codes (R is typed with Shift held).
CMU_KEYS = np.array([56, 48, 37, 33, 12, 46, 43, 29, 42, 40, 66], dtype=np.uint16)
PHRASE_KEYS = len(CMU_KEYS)
N_FEATURES = 3 * PHRASE_KEYS - 2  # H per key, DD and UD per adjacent pair


@dataclass(frozen=True)
class Typing:
    """One typing: its events in key-down order (times in ms)."""

    key: np.ndarray
    down: np.ndarray
    up: np.ndarray
    text: int


EVENT_ARRAYS = ("key", "down", "up", "sample")
SLACK_BYTES = 64 * 1024  # room for small arrays a later schema may add


@dataclass(frozen=True)
class KeystrokeLimits:
    """What one keystroke batch may hold (settings: plaintext.keystroke_*), checked before decompressing."""

    max_events: int = MAX_EVENTS

    def frame_limits(self) -> codec.FrameLimits:
        # key u2 + down f8 + up f8 + sample u4 per event, text u4 per typing (<= events)
        per_event = 2 + 8 + 8 + 4 + 4
        return codec.FrameLimits(
            max_bytes=self.max_events * per_event + SLACK_BYTES, check=self.check
        )

    def check(self, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        if name not in (*EVENT_ARRAYS, "text"):
            return
        if len(shape) != 1:
            raise SampleError(
                "keystroke_bad_events", "key, down, up and sample must be 1-D arrays of one length"
            )
        if shape[0] > self.max_events:
            raise SampleError("keystroke_too_many_events", f"{shape[0]} events")


def decode_typings(plaintext: bytes, limits: KeystrokeLimits = KeystrokeLimits()) -> list[Typing]:
    """Plaintext frame -> typings; raises PlaintextError or SampleError with a code."""
    frame = codec.decode_factor(plaintext, FACTOR, SCHEMA, limits.frame_limits())
    key, down, up, sample = (frame.require(n) for n in ("key", "down", "up", "sample"))
    if any(a.ndim != 1 for a in (key, down, up, sample)) or not (
        len(key) == len(down) == len(up) == len(sample)
    ):
        raise SampleError(
            "keystroke_bad_events", "key, down, up and sample must be 1-D arrays of one length"
        )
    if len(key) == 0:
        raise SampleError("keystroke_empty", "no key events")
    if len(key) > limits.max_events:
        raise SampleError("keystroke_too_many_events", f"{len(key)} events")
    down = down.astype(np.float64)
    up = up.astype(np.float64)
    if not (np.isfinite(down).all() and np.isfinite(up).all()):
        raise SampleError("keystroke_bad_times", "times must be finite")
    if (up < down).any():
        raise SampleError("keystroke_bad_times", "a key is released before it is pressed")
    sample = sample.astype(np.int64)
    n = int(sample.max()) + 1
    if sample.min() < 0 or n > limits.max_events or len(np.unique(sample)) != n:
        raise SampleError("keystroke_bad_samples", "sample indices must cover 0..n-1")
    text = frame.arrays.get("text")
    if text is None:
        text = np.ones(n, dtype=np.int64)
    elif text.shape != (n,):
        raise SampleError("keystroke_bad_text", f"text must have one id per typing ({n})")
    # One sort by (typing, down) and a split, not a scan of every event per typing:
    # a batch of many one-key typings stays linear-logarithmic.
    order = np.lexsort((down, sample))
    bounds = np.flatnonzero(np.diff(sample[order])) + 1
    out = []
    for s, idx in enumerate(np.split(order, bounds)):
        out.append(
            Typing(key=key[idx].astype(np.uint16), down=down[idx], up=up[idx], text=int(text[s]))
        )
    return out


def typing_features(t: Typing) -> np.ndarray:
    """Timings in seconds, CMU column order: H1, DD12, UD12, H2, ..., H_last."""
    h = (t.up - t.down) / 1000.0
    dd = np.diff(t.down) / 1000.0
    ud = (t.down[1:] - t.up[:-1]) / 1000.0
    out = np.empty(3 * len(h) - 2)
    out[0::3] = h
    out[1::3] = dd
    out[2::3] = ud
    return out


def features(typings: list[Typing]) -> np.ndarray:
    """Fixed-phrase typings -> [n, 31] float32 timing features (seconds)."""
    rows = []
    for t in typings:
        if t.text == FREE_TEXT:
            raise SampleError(
                "keystroke_free_text_unsupported", "this model scores fixed-phrase typings only"
            )
        if len(t.key) != PHRASE_KEYS:
            raise SampleError(
                "keystroke_phrase_length",
                f"a typing has {len(t.key)} keys; the model expects {PHRASE_KEYS}",
            )
        rows.append(typing_features(t))
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), N_FEATURES)


def events_from_features(
    timings: np.ndarray, keys: np.ndarray = CMU_KEYS, *, gap_ms: float = 2000.0
) -> dict[str, np.ndarray]:
    """Rebuild key events from H/DD timings (seconds, CMU order) of n typings, one after another.

    UD is not needed: for adjacent keys UD = DD - H of the first, which the events reproduce.
    """
    timings = np.atleast_2d(np.asarray(timings, dtype=np.float64))
    k = len(keys)
    h = timings[:, 0::3] * 1000.0
    dd = timings[:, 1::3] * 1000.0
    n = len(timings)
    down = np.zeros((n, k))
    down[:, 1:] = np.cumsum(dd, axis=1)
    starts = np.concatenate([[0.0], np.cumsum(down[:, -1] + h[:, -1] + gap_ms)[:-1]])
    down += starts[:, None]
    up = down + h
    return {
        "key": np.tile(keys, n).astype(np.uint16),
        "down": down.reshape(-1),
        "up": up.reshape(-1),
        "sample": np.repeat(np.arange(n, dtype=np.uint32), k),
        "text": np.ones(n, dtype=np.uint32),
    }


def encode_typings(timings: np.ndarray, keys: np.ndarray = CMU_KEYS) -> bytes:
    """n typings given as CMU timings (seconds) -> keystroke plaintext frame."""
    return codec.encode(FACTOR, events_from_features(timings, keys), schema=SCHEMA)
