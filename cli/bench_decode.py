"""`tacit bench decode`: a face worker's peak RSS decoding a hostile ~71 KiB upload.

The upload is a face frame declaring 64 frames of 1024x1024 (64 MiB) that zstd packs
into about 71 KiB (each frame is one random row repeated). Each case runs in a fresh
process that loads the face pipeline, decodes one ordinary batch (the baseline), then
decodes and preprocesses the case's payload in `--jobs` threads at once, as a pool's
threads would, and reports its peak RSS.

- ``before``: the decoder as it was: the whole zstd body decompressed under the codec's
  64 MiB cap, shapes checked only afterwards (both payloads: 64 frames, which fails at
  the cap, and 63 frames, which is under it and reaches preprocessing);
- ``after``: per-factor maxima checked from the array headers before decompressing;
- ``largest``: the largest batch the face factor accepts by default (4 Mpx, RGB), the
  figure the per-pool memory budget in docs/operations.md is built on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
from typing import Any

import numpy as np

MiB = 1024 * 1024
CASES = ("before-64", "before-63", "after-64", "after-63", "largest")


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser(
        "decode", help="face worker peak RSS on a hostile 71 KiB upload, before/after"
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="payloads decoded at once (a pool's threads)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def hostile_frame(n_frames: int) -> bytes:
    from pipelines import codec

    rows = np.random.default_rng(0).integers(0, 256, size=(n_frames, 1, 1024), dtype=np.uint8)
    return codec.encode(
        "face", {"frames": np.broadcast_to(rows, (n_frames, 1024, 1024))}, compress=True
    )


def largest_frame() -> bytes:
    from pipelines import codec

    frames = np.random.default_rng(0).integers(0, 256, size=(64, 256, 256, 3), dtype=np.uint8)
    return codec.encode("face", {"frames": frames}, compress=True)


def _decode_before(data: bytes) -> object:
    """Main's path: decompress the whole body (64 MiB cap), then parse, then check shapes."""
    import io

    import zstandard

    from pipelines import codec
    from pipelines.face.frames import FaceLimits, decode_frames

    head = data[: 6 + data[5] + 2]
    out = bytearray()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data[len(head) :])) as reader:
        while chunk := reader.read(min(MiB, codec.MAX_DECODED_BYTES + 1 - len(out))):
            out += chunk
            if len(out) > codec.MAX_DECODED_BYTES:
                raise codec.PlaintextError(
                    "plaintext_too_large", "decompressed plaintext exceeds 64 MiB"
                )
    plain = head[:4] + bytes([data[4] & ~codec.FLAG_ZSTD]) + head[5:] + bytes(out)
    return decode_frames(plain, FaceLimits(max_pixels=64 * MiB))  # no per-batch budget


def _child(case: str, path: str, jobs: int) -> dict[str, Any]:
    from core.factors import load_pipeline
    from pipelines.face.synthetic import capture, make_person

    pipeline = load_pipeline("face")
    ordinary = capture(make_person(0), np.random.default_rng(0), 4)
    pipeline.preprocess(pipeline.decode(ordinary))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    mode = case.partition("-")[0]
    with open(path, "rb") as f:  # made by the parent: building it here would raise the peak
        data = f.read()
    codes: list[str] = []

    def one() -> None:
        try:
            decoded = _decode_before(data) if mode == "before" else pipeline.decode(data)
            pipeline.preprocess(decoded)
            codes.append("accepted")
        except Exception as e:  # noqa: BLE001 - the code is the figure
            codes.append(str(getattr(e, "code", type(e).__name__)))

    threads = [threading.Thread(target=one) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "case": case,
        "upload_bytes": len(data),
        "jobs": jobs,
        "baseline_mb": round(baseline / 1e6, 1),
        "peak_mb": round(peak / 1e6, 1),
        "per_job_mb": round((peak - baseline) / jobs / 1e6, 1),
        "outcome": sorted(set(codes)),
    }


def run(args: argparse.Namespace) -> int:
    from cli.console import Progress

    rows = []
    progress = Progress("decode cases", len(CASES))
    tmp = tempfile.TemporaryDirectory(prefix="tacit-bench-decode-")
    payloads = {"64": hostile_frame(64), "63": hostile_frame(63), "largest": largest_frame()}
    for i, case in enumerate(CASES):
        progress.update(i, case)
        path = os.path.join(tmp.name, case)
        with open(path, "wb") as f:
            f.write(payloads[case.rpartition("-")[2]])
        proc = subprocess.run(
            [sys.executable, "-m", "cli.bench_decode", case, path, str(args.jobs)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(f"case {case} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    progress.finish()
    tmp.cleanup()
    print(
        f"{'case':<10} {'upload':>8} {'jobs':>4} {'baseline':>9} {'peak':>8} {'per job':>8}  outcome"
    )
    for r in rows:
        print(
            f"{r['case']:<10} {r['upload_bytes'] / 1024:>6.1f}Ki {r['jobs']:>4} {r['baseline_mb']:>7.1f}MB "
            f"{r['peak_mb']:>6.1f}MB {r['per_job_mb']:>6.1f}MB  {','.join(r['outcome'])}"
        )
    if args.json:
        print(json.dumps({"bench": "decode", "factor": "face", "cases": rows}))
    return 0


if __name__ == "__main__":  # one case in a fresh process: python -m cli.bench_decode CASE FILE JOBS
    print(json.dumps(_child(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
