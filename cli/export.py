"""`tacit export FACTOR`: the factor's embedding model as ONNX, or as a Triton model repository.

``--onnx FILE`` writes one self-contained ONNX file with a dynamic batch axis;
``--triton-repo DIR`` writes ``DIR/<factor>/config.pbtxt`` and ``DIR/<factor>/1/model.onnx``
(``--backend python`` adds the python-backend ``model.py`` for Triton builds without the
onnxruntime backend). Either way the export is checked: ONNX Runtime's embeddings are
compared with the torch pipeline's and the largest difference is printed (it must stay
under 1e-5, or the command fails).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TOLERANCE = 1e-5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a factor's model as ONNX or a Triton model repository"
    )
    p.add_argument("factor")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--onnx", type=Path, metavar="FILE", help="write one ONNX file")
    out.add_argument(
        "--triton-repo", type=Path, metavar="DIR", help="write a Triton model repository"
    )
    p.add_argument(
        "--backend",
        choices=("onnxruntime", "python"),
        default="onnxruntime",
        help="Triton backend (python: ONNX Runtime inside the python backend, for CPU test servers)",
    )
    p.add_argument(
        "--kind", choices=("gpu", "cpu"), default="gpu", help="Triton instance_group kind"
    )
    p.add_argument("--instances", type=int, default=1, help="model instances per device")
    p.add_argument(
        "--max-batch",
        type=int,
        default=64,
        help="Triton max_batch_size; keep it >= the pool's TACIT_POOL__MAX_BATCH",
    )
    p.add_argument(
        "--queue-delay-us",
        type=int,
        default=2000,
        help="dynamic_batching max_queue_delay_microseconds",
    )
    p.add_argument(
        "--json", action="store_true", help="end with one JSON line describing the export"
    )
    p.set_defaults(func=run)


def check(pipeline, onnx_file: Path, rows: int = 16) -> float:  # type: ignore[no-untyped-def]
    """Largest absolute difference between ONNX Runtime's and torch's embeddings."""
    import numpy as np
    import onnxruntime as ort

    from pipelines.export import embed_reference, example_input

    x = example_input(pipeline, rows=rows)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(["EMBEDDING"], {"INPUT": x})[0]
    return float(np.abs(got - embed_reference(pipeline, x)).max())


def run(args: argparse.Namespace) -> int:
    from core import factors as registry

    if args.factor not in registry.names():
        print(
            f"tacit export: unknown factor {args.factor!r}; installed: {', '.join(registry.names())}",
            file=sys.stderr,
        )
        return 2
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        print(f"tacit export: needs {e.name}: pip install 'tacit[oip]'", file=sys.stderr)
        return 2
    from core.factors import load_pipeline
    from pipelines import export

    print(f"loading the {args.factor} pipeline...", file=sys.stderr, flush=True)
    pipeline = load_pipeline(args.factor)
    print("exporting (torch.export + ONNX, a few seconds)...", file=sys.stderr, flush=True)
    if args.onnx:
        onnx_file = export.export_onnx(pipeline, args.onnx)
        where = onnx_file
    else:
        model = export.TritonModel(
            backend=args.backend,
            kind=f"KIND_{args.kind.upper()}",
            instances=args.instances,
            max_batch_size=args.max_batch,
            max_queue_delay_us=args.queue_delay_us,
        )
        where = export.write_triton_repo(pipeline, args.triton_repo, model)
        onnx_file = where / "1" / "model.onnx"
    diff = check(pipeline, onnx_file)
    ok = diff <= TOLERANCE
    print(f"{args.factor} {pipeline.model_version} -> {where}")
    print(
        f"ONNX Runtime vs torch: max |difference| {diff:.2e} ({'ok' if ok else f'over {TOLERANCE:g}'})"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "factor": args.factor,
                    "model_version": pipeline.model_version,
                    "path": str(where),
                    "max_abs_diff": diff,
                    "ok": ok,
                }
            )
        )
    return 0 if ok else 1
