"""Simulated faces for demos and tests: a person is a stable drawn face, a capture jitters it.

A face is an ellipse with eyes, brows, nose and mouth whose sizes and places are the
person's own, plus a smooth personal shading; captures move, scale and relight it and add
sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.face.frames import encode_frames

H, W = 112, 92


@dataclass(frozen=True)
class Face:
    image: np.ndarray  # [112, 92] float in 0..1, the person's canonical face


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float
) -> np.ndarray:
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1.0


def make_person(seed: int) -> Face:
    """A face with its own geometry and shading, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    img = np.full((H, W), 0.15)
    skin = rng.uniform(0.5, 0.8)
    img[_ellipse(yy, xx, 58 + rng.normal(0, 3), 46, rng.uniform(38, 48), rng.uniform(26, 34))] = (
        skin
    )
    eye_y, eye_dx = rng.uniform(42, 52), rng.uniform(11, 17)
    eye_r = rng.uniform(2.5, 5.0)
    for side in (-1, 1):
        img[
            _ellipse(yy, xx, eye_y, 46 + side * eye_dx, eye_r * rng.uniform(0.6, 1.0), eye_r * 1.5)
        ] = 0.1
        brow = _ellipse(
            yy, xx, eye_y - rng.uniform(7, 11), 46 + side * eye_dx, 1.5, rng.uniform(5, 8)
        )
        img[brow] = rng.uniform(0.05, 0.3)
    nose_len = rng.uniform(10, 18)
    img[_ellipse(yy, xx, eye_y + nose_len, 46, rng.uniform(3, 6), rng.uniform(3, 7))] = skin * 0.7
    img[
        _ellipse(
            yy,
            xx,
            eye_y + nose_len + rng.uniform(10, 16),
            46,
            rng.uniform(2, 4),
            rng.uniform(7, 13),
        )
    ] = 0.3
    # smooth personal shading: a few random low-frequency waves
    for _ in range(4):
        fy, fx, ph = rng.uniform(0.02, 0.12), rng.uniform(0.02, 0.12), rng.uniform(0, 2 * np.pi)
        img += 0.06 * np.sin(fy * yy + fx * xx + ph)
    return Face(image=np.clip(img, 0.0, 1.0))


def _jitter(face: Face, rng: np.random.Generator) -> np.ndarray:
    dy, dx = rng.integers(-3, 4, 2)
    shifted = np.roll(np.roll(face.image, int(dy), axis=0), int(dx), axis=1)
    gain, bias = rng.uniform(0.85, 1.15), rng.uniform(-0.08, 0.08)
    noisy = shifted * gain + bias + rng.normal(0.0, 0.03, shifted.shape)
    return np.clip(noisy * 255.0, 0, 255).astype(np.uint8)


def capture(person: Face, rng: np.random.Generator, n: int) -> bytes:
    """A face plaintext frame with n grayscale 112x92 frames of `person`."""
    return encode_frames(np.stack([_jitter(person, rng) for _ in range(n)]))
