"""Per-factor plaintext maxima: a small frame declaring a huge batch is refused from its
array headers, before its body is decompressed, with a code the workers fail at once."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import zstandard

from pipelines import codec
from pipelines.base import SampleError
from pipelines.face.frames import FaceLimits, decode_frames
from pipelines.gait.signal import GaitLimits, recording_from_arrays
from pipelines.keystroke.events import KeystrokeLimits, decode_typings

MiB = 1024 * 1024


def hostile_face_frame() -> bytes:
    """64 frames of 1024x1024 (64 MiB once decoded, main's cap exactly) in a few KiB of zstd:
    each frame is one random row repeated, so it compresses to about 71 KiB."""
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, size=(64, 1, 1024), dtype=np.uint8)
    frames = np.broadcast_to(rows, (64, 1024, 1024))
    return codec.encode("face", {"frames": frames}, compress=True)


def peak_bytes(fn) -> tuple[int, BaseException | None]:  # type: ignore[no-untyped-def]
    """Peak Python-heap bytes allocated while `fn` runs, and what it raised."""
    tracemalloc.start()
    err: BaseException | None = None
    try:
        fn()
    except BaseException as e:  # noqa: BLE001 - the caller asserts on it
        err = e
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, err


def test_a_hostile_face_upload_is_refused_before_its_64_mib_are_decompressed():
    # given a 71 KiB frame declaring 64 frames of 1024x1024
    data = hostile_face_frame()
    assert len(data) < 100 * 1024
    # when a face worker decodes it with the default limits
    peak, err = peak_bytes(lambda: decode_frames(data))
    # then it fails with plaintext_too_large having held a few KiB, not 64 MiB
    assert isinstance(err, codec.PlaintextError) and err.code == "plaintext_too_large"
    assert peak < 1 * MiB


def test_frames_over_the_pixel_budget_fail_from_the_header_without_compression_too():
    frames = np.zeros((8, 1024, 1024), np.uint8)  # 8 Mpx, under 64 frames and 1024 sides
    data = codec.encode("face", {"frames": frames})
    with pytest.raises(codec.PlaintextError) as e:
        decode_frames(data)
    assert e.value.code == "plaintext_too_large"
    # an operator may allow more (settings: plaintext.face_max_pixels)
    assert decode_frames(data, FaceLimits(max_pixels=8 * MiB)).shape == (8, 1024, 1024)


def test_face_header_checks_give_the_same_codes_as_after_decoding():
    too_many = codec.encode("face", {"frames": np.zeros((65, 16, 16), np.uint8)}, compress=True)
    with pytest.raises(SampleError) as e:
        decode_frames(too_many)
    assert e.value.code == "face_too_many_frames"
    with pytest.raises(SampleError) as e:
        decode_frames(too_many, FaceLimits(max_frames=64))
    assert e.value.code == "face_too_many_frames"
    tiny = codec.encode("face", {"frames": np.zeros((2, 8, 8), np.uint8)}, compress=True)
    with pytest.raises(SampleError) as e:
        decode_frames(tiny)
    assert e.value.code == "face_bad_size"


def test_an_extra_array_cannot_smuggle_bytes_past_the_factors_budget():
    # a 1 Mpx face batch with a 40 MiB array the face factor never reads
    data = codec.encode(
        "face",
        {"frames": np.zeros((4, 256, 256), np.uint8), "junk": np.zeros(40 * MiB, np.uint8)},
        compress=True,
    )
    peak, err = peak_bytes(lambda: decode_frames(data))
    assert isinstance(err, codec.PlaintextError) and err.code == "plaintext_too_large"
    assert peak < 1 * MiB


def test_a_zstd_body_claiming_less_than_it_holds_stops_at_the_budget():
    # given a frame whose header declares a small array but whose zstd body goes on for 64 MiB
    small = codec.encode("face", {"frames": np.zeros((4, 64, 64), np.uint8)})
    body = small[12:] + bytes(64 * MiB)
    data = (
        small[:4]
        + bytes([codec.FLAG_ZSTD])
        + small[5:12]
        + zstandard.ZstdCompressor().compress(body)
    )
    peak, err = peak_bytes(lambda: decode_frames(data))
    assert isinstance(err, codec.PlaintextError) and err.code in (
        "plaintext_trailing_bytes",
        "plaintext_too_large",
    )
    assert peak < 2 * MiB


def test_a_gait_batch_longer_than_its_windows_allow_fails_before_decompressing():
    limits = GaitLimits(max_windows=16)
    t = limits.max_raw_samples + 1
    data = codec.encode(
        "gait",
        {
            "acc": np.zeros((t, 3), np.float64),
            "gyro": np.zeros((t, 3), np.float64),
            "rate_hz": np.array(1000.0, np.float32),
        },
        compress=True,
    )
    with pytest.raises(codec.PlaintextError) as e:
        codec.decode(data, limits.frame_limits())
    assert e.value.code == "plaintext_too_large"


def test_two_gait_samples_a_year_apart_are_too_long_not_a_huge_resampling_grid():
    acc = np.zeros((2, 3), np.float32)
    peak, err = peak_bytes(
        lambda: recording_from_arrays(acc, acc, 50.0, np.array([0.0, 365 * 86_400.0]))
    )
    assert isinstance(err, SampleError) and err.code == "gait_too_long"
    assert peak < 1 * MiB


def test_keystroke_events_over_the_maximum_fail_from_the_header():
    n = 1_000_001
    arrays = {
        "key": np.zeros(n, np.uint16),
        "down": np.zeros(n),
        "up": np.zeros(n),
        "sample": np.zeros(n, np.uint32),
    }
    data = codec.encode("keystroke", arrays, compress=True)
    peak, err = peak_bytes(lambda: decode_typings(data))
    assert isinstance(err, SampleError) and err.code == "keystroke_too_many_events"
    assert peak < 1 * MiB
    with pytest.raises(SampleError) as e:
        decode_typings(data, KeystrokeLimits(max_events=10))
    assert e.value.code == "keystroke_too_many_events"


def test_many_one_key_typings_decode_in_linear_time():
    n = 100_000  # every event its own typing: a scan per typing would be 10^10 comparisons
    rng = np.random.default_rng(1)
    down = rng.random(n) * 1000
    arrays = {
        "key": np.zeros(n, np.uint16),
        "down": down,
        "up": down + 1,
        "sample": rng.permutation(n).astype(np.uint32),
    }
    typings = decode_typings(codec.encode("keystroke", arrays))
    assert len(typings) == n and all(len(t.key) == 1 for t in typings[:10])


def test_four_large_dimensions_cannot_wrap_the_size_computation():
    head = codec.encode("face", {"frames": np.zeros((1, 1, 1, 1), np.uint8)})
    # patch the four u32 dims to 2^32-1 each: their product overflows 64 bits
    i = head.index(b"|u1") + 3 + 1
    data = head[:i] + (b"\xff\xff\xff\xff" * 4) + head[i + 16 :]
    with pytest.raises(codec.PlaintextError) as e:
        codec.decode(data)
    assert e.value.code == "plaintext_too_large"
