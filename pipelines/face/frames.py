"""Face plaintext schema 1 and the image normalisation shared by the model and the baseline.

Arrays (see docs/plaintext.md):
    frames  |u1 [n, h, w] (grayscale) or [n, h, w, 3] (RGB), one face crop per frame
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from pipelines import codec
from pipelines.base import SampleError

FACTOR = "face"
SCHEMA = 1
INPUT_HW = (56, 46)  # half of ORL's 112x92, same aspect
MIN_SIDE, MAX_SIDE, MAX_FRAMES = 16, 1024, 64
MAX_PIXELS = 4 * 1024 * 1024  # per batch, all frames together: 64 crops of 256x256
SLACK_BYTES = 64 * 1024  # room for small arrays a later schema may add

Frames: TypeAlias = npt.NDArray[np.uint8]  # a decoded batch: [n, h, w] or [n, h, w, 3]


@dataclass(frozen=True)
class FaceLimits:
    """What one face batch may hold (settings: plaintext.face_*), checked before decompressing."""

    max_frames: int = MAX_FRAMES
    max_pixels: int = MAX_PIXELS

    def frame_limits(self) -> codec.FrameLimits:
        return codec.FrameLimits(max_bytes=self.max_pixels * 3 + SLACK_BYTES, check=self.check)

    def check(self, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        """Refuse the `frames` array from its header: the same codes as after decoding."""
        if name != "frames":
            return
        if dtype != "|u1":
            raise SampleError("face_bad_dtype", "frames must be uint8")
        if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 3)):
            raise SampleError(
                "face_bad_shape", f"frames must be [n, h, w] or [n, h, w, 3], got {list(shape)}"
            )
        n, h, w = shape[:3]
        if n > self.max_frames:
            raise SampleError("face_too_many_frames", f"{n} frames; at most {self.max_frames}")
        if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
            raise SampleError(
                "face_bad_size", f"frames are {h}x{w}; sides must be {MIN_SIDE}..{MAX_SIDE}"
            )
        if n * h * w > self.max_pixels:
            raise codec.PlaintextError(
                "plaintext_too_large", f"{n * h * w} pixels; at most {self.max_pixels} per batch"
            )


def decode_frames(plaintext: bytes, limits: FaceLimits = FaceLimits()) -> Frames:
    """Plaintext frame -> uint8 frames [n, h, w] or [n, h, w, 3]; raises PlaintextError/SampleError."""
    frame = codec.decode_factor(plaintext, FACTOR, SCHEMA, limits.frame_limits())
    x = frame.require("frames")
    if x.dtype != np.uint8:
        raise SampleError("face_bad_dtype", "frames must be uint8")
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[3] == 3)):
        raise SampleError(
            "face_bad_shape", f"frames must be [n, h, w] or [n, h, w, 3], got {list(x.shape)}"
        )
    n, h, w = x.shape[:3]
    if n == 0:
        raise SampleError("face_empty", "no frames")
    if n > limits.max_frames:
        raise SampleError("face_too_many_frames", f"{n} frames; at most {limits.max_frames}")
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise SampleError(
            "face_bad_size", f"frames are {h}x{w}; sides must be {MIN_SIDE}..{MAX_SIDE}"
        )
    return x


def normalise(frames: Frames) -> np.ndarray:
    """uint8 frames -> [n, 1, 56, 46] float32: grayscale, centre crop to 112:92, resize, per-image standardise."""
    x = frames.astype(np.float32)
    if x.ndim == 4:
        x = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    n, h, w = x.shape
    target = INPUT_HW[0] / INPUT_HW[1]
    if h / w > target:  # too tall: crop rows
        ch = round(w * target)
        top = (h - ch) // 2
        x = x[:, top : top + ch]
    elif h / w < target:  # too wide: crop columns
        cw = round(h / target)
        left = (w - cw) // 2
        x = x[:, :, left : left + cw]
    t = torch.from_numpy(np.ascontiguousarray(x))[:, None]
    mode = "area" if t.shape[-2] >= INPUT_HW[0] else "bilinear"
    t = (
        F.interpolate(t, size=INPUT_HW, mode=mode)
        if mode == "area"
        else F.interpolate(t, size=INPUT_HW, mode=mode, align_corners=False)
    )
    t = t - t.mean(dim=(2, 3), keepdim=True)
    t = t / t.std(dim=(2, 3), keepdim=True).clamp_min(1.0)
    return t.numpy().astype(np.float32)


def encode_frames(frames: np.ndarray) -> bytes:
    """uint8 frames -> face plaintext frame."""
    return codec.encode(
        FACTOR, {"frames": np.ascontiguousarray(frames, dtype=np.uint8)}, schema=SCHEMA
    )
