"""`tacit eval FACTOR`: run a factor's public evaluation protocol, model and classic baseline."""

from __future__ import annotations

import argparse

from cli.console import say
from core import factors as registry


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a factor model on its public data set (EER, DET)"
    )
    p.add_argument("factor", choices=[*registry.providing("dataset"), "trust"])
    p.add_argument(
        "--data", required=True, help="folder holding the data set in its original format"
    )
    p.add_argument("--scores-out", help="CSV, one row per comparison (required without --folds)")
    p.add_argument("--report", help="folder for report.json, report.md and det.png")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument(
        "--subjects", nargs="+", help="only these subjects (e.g. those held out of training)"
    )
    p.add_argument("--weights", help="weights folder (default: the committed weights)")
    p.add_argument("--device", default="cpu", help="cpu or cuda:N")
    p.add_argument(
        "--folds",
        type=int,
        help="held-out evaluation: train on k-1 folds of subjects, evaluate on the rest, k times",
    )
    p.add_argument("--seed", type=int, default=0, help="training seed with --folds")
    from cli import eval_trust

    eval_trust.add_arguments(p)  # `tacit eval trust`: the fused trust over sessions
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pipelines.evaluation.harness import factor_module
    from pipelines.evaluation.run import evaluate

    if args.factor == "trust":
        from cli import eval_trust

        return eval_trust.run(args)
    data = Path(args.data)
    if not data.exists():
        say(f"error: data folder {data} does not exist")
        return 2
    if args.folds:
        return _cross_validate(args, data)
    if not args.scores_out:
        say("error: --scores-out is required (or --folds with --report)")
        return 2
    try:
        say(f"loading {args.factor} protocol from {data}")
        subjects = factor_module(args.factor, "dataset").load_protocol(data, args.subjects)
    except (FileNotFoundError, ValueError, OSError) as e:
        say(f"error: cannot read {args.factor} data in {data}: {e}")
        return 2
    if len(subjects) < 2:
        say("error: the protocol needs at least two subjects")
        return 2
    try:
        result = evaluate(
            args.factor,
            subjects,
            scores_out=Path(args.scores_out),
            report=Path(args.report) if args.report else None,
            weights=Path(args.weights) if args.weights else None,
            device=args.device,
            data=str(data),
            progress=say,
        )
    except FileNotFoundError as e:
        say(f"error: {e}")
        return 2
    say(
        f"{args.factor}: {result['subjects']} subjects, {result['comparisons']} comparisons, "
        f"mean EER {result['eer']:.4f} (baseline {result['baseline_eer']:.4f})"
    )
    if args.json:
        print(json.dumps(result))
    return 0


def _cross_validate(args: argparse.Namespace, data: object) -> int:
    import json
    from pathlib import Path

    from pipelines.evaluation.crossval import cross_validate

    if not args.report:
        say("error: --folds needs --report")
        return 2
    try:
        result = cross_validate(
            args.factor,
            Path(str(data)),
            k=args.folds,
            report=Path(args.report),
            seed=args.seed,
            device=args.device,
            progress=say,
        )
    except (FileNotFoundError, ValueError) as e:
        say(f"error: {e}")
        return 2
    per_fold = ", ".join(f"{f['eer']:.4f}" for f in result["folds"])
    say(
        f"{args.factor}: {args.folds} folds, {result['subjects']} held-out subjects, "
        f"mean EER {result['eer']:.4f} (baseline {result['baseline_eer']:.4f}), "
        f"per fold {per_fold}"
    )
    if args.json:
        print(json.dumps(result))
    return 0
