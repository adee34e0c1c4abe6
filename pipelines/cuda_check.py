"""Same inputs through each factor's pipeline on CPU and on a CUDA device: outputs must agree.

python -m pipelines.cuda_check [--device cuda:0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from core import factors as registry
from core.factors import load_pipeline
from pipelines.base import embed_numpy

ATOL = 1e-3  # embeddings are unit-scale; TF32/cuDNN kernels differ from CPU in the last bits


def check(factor: str, device: str, rows: int = 64) -> dict[str, object]:
    synth = registry.get(factor).submodule("synthetic")
    rng = np.random.default_rng(0)
    cpu, gpu = load_pipeline(factor, "cpu"), load_pipeline(factor, device)
    enrol = cpu.preprocess(cpu.decode(synth.capture(synth.make_person(1), rng, 8)))
    probe = cpu.preprocess(cpu.decode(synth.capture(synth.make_person(1), rng, 4)))
    x = np.concatenate([enrol] * (rows // len(enrol) + 1))[:rows]
    e_cpu, e_gpu = embed_numpy(cpu, x), embed_numpy(gpu, x)
    t_cpu, t_gpu = cpu.enrol(embed_numpy(cpu, enrol)), gpu.enrol(embed_numpy(gpu, enrol))
    v_cpu = cpu.verify(t_cpu, embed_numpy(cpu, probe))
    v_gpu = gpu.verify(t_gpu, embed_numpy(gpu, probe))
    diff = float(np.abs(e_cpu - e_gpu).max())
    return {
        "factor": factor,
        "device": device,
        "rows": rows,
        "max_abs_diff": diff,
        "score_cpu": round(v_cpu.score, 6),
        "score_gpu": round(v_gpu.score, 6),
        "ok": diff <= ATOL and abs(v_cpu.score - v_gpu.score) <= 1e-2,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.cuda_check")
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("cuda_check: no CUDA device here", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = [check(f, args.device) for f in registry.providing("synthetic")]
    for r in results:
        print(
            f"{r['factor']:<10} max |cpu-gpu| {r['max_abs_diff']:.2e}  score cpu {r['score_cpu']:.4f} "
            f"gpu {r['score_gpu']:.4f}  {'ok' if r['ok'] else 'MISMATCH'}"
        )
    if args.json:
        print(json.dumps({"cuda_check": results, "gpu": torch.cuda.get_device_name(0)}))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
