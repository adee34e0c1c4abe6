"""`tacit train FACTOR`: train a factor's encoder on its public data set and write its weights."""

from __future__ import annotations

import argparse

from cli.console import say
from core import factors as registry


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a factor model on its public data set")
    p.add_argument("factor", choices=registry.providing("train"))
    p.add_argument(
        "--data", required=True, help="folder holding the data set in its original format"
    )
    p.add_argument("--out", help="weights folder (default: the package's committed weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--subjects", nargs="+", help="train on these subjects only (hold the rest out)")
    p.add_argument("--json", action="store_true", help="print the training summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import importlib
    import json
    from pathlib import Path

    import torch

    data = Path(args.data)
    if not data.exists():
        say(f"error: data folder {data} does not exist")
        return 2
    package = importlib.import_module(registry.get(args.factor).module)
    out = Path(args.out) if args.out else Path(str(package.__file__)).parent / "weights"
    torch.set_num_threads(min(2, torch.get_num_threads()))
    trainer = registry.get(args.factor).submodule("train")
    say(f"training {args.factor} on {data} (seed {args.seed}) -> {out}")
    try:
        summary = trainer.train(data, out=out, seed=args.seed, subjects=args.subjects, progress=say)
    except (FileNotFoundError, ValueError) as e:
        say(f"error: {e}")
        return 2
    say(f"wrote {out / 'model.safetensors'} and {out / 'calibration.json'}")
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0
