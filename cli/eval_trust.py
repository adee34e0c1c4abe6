"""`tacit eval trust`: impostor detection and false lockouts of the fused trust over chimeric users.

The session construction, the lock and reset rule and the figures live in
core/trust/evaluation.py; this command loads the three data sets, scores every
upload with the factor pipelines, and writes the trace, the report and the summary.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from cli.console import say
from core.trust.evaluation import LockoutFigures, TraceRow, Upload, trust_factors
from core.trust.fusion import FusionParams

# tenants.decision_threshold's default (core/migrations/0001_init.sql): a new tenant's operating point
DEFAULT_THRESHOLD = 0.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags only `tacit eval trust` reads (it shares --data, --report, --json, --seed, --device)."""
    p.add_argument("--trace-out", help="CSV, one row per upload of every session")
    for factor in trust_factors():  # --keystroke-batch 5, --gait-batch 8, ...
        p.add_argument(
            f"--{factor}-batch",
            type=int,
            default=None,
            metavar="N",
            help=f"samples per {factor} upload (default the data set's TRUST_BATCH)",
        )
    p.add_argument("--interval-s", type=float, default=60.0, help="seconds between uploads")
    p.add_argument(
        "--evidence",
        help="with --folds: reuse this out-of-fold evidence CSV instead of training again",
    )
    p.add_argument(
        "--retrain",
        nargs="+",
        choices=trust_factors(),
        default=list(trust_factors()),
        help="with --folds: factors trained per fold (the others use their committed weights)",
    )
    p.add_argument(
        "--calibrate-on-training",
        action="store_true",
        help="with --folds: calibrate fold models on their training subjects (faster)",
    )
    p.add_argument(
        "--candidates", type=int, default=1500, help="with --folds: fusion parameter sets tried"
    )
    p.add_argument(
        "--factor-weights",
        action="append",
        default=[],
        metavar="FACTOR=DIR",
        help="weights folder for one factor (repeatable; default the committed weights)",
    )


def _per_factor(flag: str, specs: list[str]) -> dict[str, str]:
    """``FACTOR=VALUE`` flags by factor, each factor one `tacit eval trust` fuses."""
    out = {}
    for spec in specs:
        factor, sep, value = spec.partition("=")
        if not sep or factor not in trust_factors():
            raise ValueError(
                f"{flag} wants FACTOR=VALUE with FACTOR one of {', '.join(trust_factors())}"
            )
        out[factor] = value
    return out


def _batches(args: argparse.Namespace) -> dict[str, int]:
    """Samples per upload of each factor: its ``--<factor>-batch`` flag or its data set's."""
    from pipelines.evaluation.chimeric import default_batch

    given = {f: getattr(args, f"{f}_batch", None) for f in trust_factors()}
    return {f: default_batch(f) if n is None else n for f, n in given.items()}


def run(args: argparse.Namespace) -> int:
    from core.settings import get_settings
    from core.trust.fusion import FusionParams

    data = Path(args.data)
    if not data.is_dir():
        say(f"error: data folder {data} does not exist")
        return 2
    if args.interval_s <= 0:
        say("error: --interval-s must be positive")
        return 2
    try:
        batch = _batches(args)
        weights = {
            f: Path(d) for f, d in _per_factor("--factor-weights", args.factor_weights).items()
        }
    except ValueError as e:
        say(f"error: {e}")
        return 2
    if min(batch.values(), default=1) < 1:
        say("error: batch sizes must be at least 1")
        return 2
    params = FusionParams.from_settings(get_settings().trust)
    if args.folds:
        return _tune_on_folds(args, data, batch=batch, params=params)
    try:
        result = evaluate_trust(
            data,
            batch=batch,
            interval_s=args.interval_s,
            params=params,
            threshold=DEFAULT_THRESHOLD,
            weights=weights,
            device=args.device,
            trace_out=Path(args.trace_out) if args.trace_out else None,
            report=Path(args.report) if args.report else None,
            seed=args.seed,
        )
    except (FileNotFoundError, ValueError, OSError) as e:
        say(f"error: {e}")
        return 2
    f = result["fused"]
    say(
        f"trust: {result['users']} users, {result['sessions']} sessions, {result['uploads']} uploads; "
        f"fused ANIA {f['ania']:.2f}, detected {f['detected']:.3f}, "
        f"false lockouts {f['false_lockouts_per_1000']:.2f} per 1000 (ANGA {f['anga']:.1f})"
    )
    for name in trust_factors():
        g = result["factors"][name]
        say(
            f"  {name} alone: ANIA {g['ania']:.2f}, detected {g['detected']:.3f}, "
            f"false lockouts {g['false_lockouts_per_1000']:.2f} per 1000"
        )
    if args.json:
        print(json.dumps(result))
    return 0


def _replayed(
    uploads: list[Upload],
    evidence: dict[Upload, tuple[float, float]],
    *,
    params: FusionParams,
    threshold: float,
    users: int,
) -> tuple[list[TraceRow], dict[str, Any], dict[str, LockoutFigures]]:
    """The fused replay's rows, the `--json` summary, and the fused and each factor's figures."""
    from core.trust import evaluation as te

    rows = te.replay(uploads, evidence, params=params, threshold=threshold)
    per_factor = {
        f: te.figures(te.replay(uploads, evidence, params=params, threshold=threshold, factors=[f]))
        for f in trust_factors()
    }
    fused = te.figures(rows)
    result = {
        "users": users,
        "sessions": len({u.session for u in uploads}),
        "uploads": len(uploads),
        "fused": fused.summary(),
        "factors": {f: per_factor[f].summary() for f in trust_factors()},
    }
    return rows, result, {"fused": fused, **per_factor}


def evaluate_trust(
    data: Path,
    *,
    batch: dict[str, int],
    interval_s: float,
    params: Any,
    threshold: float,
    weights: dict[str, Path] | None = None,
    device: str = "cpu",
    trace_out: Path | None = None,
    report: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Build, score and fuse every session; returns the `--json` summary."""
    import torch

    from core.trust import evaluation as te
    from pipelines.evaluation.chimeric import load_chimeric, subjects_of

    torch.set_num_threads(min(2, torch.get_num_threads()))
    subjects = {}
    for factor in trust_factors():
        say(f"loading {factor} protocol from {data}")
        subjects[factor] = subjects_of(factor, data)
    pairs = te.pair_subjects({f: [s.subject for s in subs] for f, subs in subjects.items()})
    if len(pairs) < 2:
        raise ValueError("the trust evaluation needs at least two subjects in every data set")
    say(
        f"{len(pairs)} chimeric users: "
        + ", ".join("+".join(p.values()) for p in pairs[:3])
        + ", ..."
    )
    prepared = load_chimeric(
        data, pairs, subjects, batch_size=batch, weights=weights, device=device, progress=say
    )
    available = [
        {f: len(prepared[f].batches[u]) for f in trust_factors()} for u in range(len(pairs))
    ]
    uploads = te.build_sessions(available, interval_s=interval_s)
    if not uploads:
        raise ValueError("no user has a full probe batch of every factor")
    say(f"scoring {len(uploads)} uploads")
    cache: dict[tuple[str, int, int, int], tuple[float, float]] = {}
    evidence = {}
    for u in uploads:
        key = (u.factor, u.user, u.source, u.batch)
        if key not in cache:
            v = prepared[u.factor].verify(u.user, u.source, u.batch)
            cache[key] = (float(v.score), float(v.llr))
        evidence[u] = cache[key]
    rows, result, details = _replayed(
        uploads, evidence, params=params, threshold=threshold, users=len(pairs)
    )
    if trace_out is not None:
        n = te.write_trace(trace_out, rows)
        say(f"wrote {n} rows to {trace_out}")
    if report is not None:
        from cli.trust_report import write_trust_report

        write_trust_report(
            report,
            rows,
            result,
            details=details,
            setup={
                "data": str(data),
                "pairs": pairs,
                "batch": batch,
                "interval_s": interval_s,
                "threshold": threshold,
                "fusion": {
                    "prior_probability": params.prior_probability,
                    "half_life_s": dict(params.half_life_s),
                    "max_age_s": params.max_age_s,
                    "max_samples": params.max_samples,
                    "llr_clip": params.llr_clip,
                },
                "models": {f: prepared[f].model_version for f in trust_factors()},
            },
            rng=random.Random(seed),
        )
        say(f"wrote {report / 'report.json'}, report.md, trust.png and det.png")
    return result


def _tune_on_folds(
    args: argparse.Namespace, data: Path, *, batch: dict[str, int], params: Any
) -> int:
    """`--folds K`: out-of-fold evidence per subject fold, then the nested fusion tuning."""
    from cli.trust_folds import fold_evidence, read_evidence, write_evidence
    from cli.trust_tuning import tune

    if not args.report:
        say("error: --folds needs --report (the fold weights, evidence and tuning go there)")
        return 2
    report = Path(args.report)
    try:
        if args.evidence:
            evidence = read_evidence(Path(args.evidence))
        else:
            evidence = fold_evidence(
                data,
                k=args.folds,
                batch=batch,
                interval_s=args.interval_s,
                work=report / "weights",
                seed=args.seed,
                device=args.device,
                progress=say,
                retrain=tuple(args.retrain),
                calibrate_on_training=args.calibrate_on_training,
            )
            write_evidence(report / "evidence.csv", evidence)
            say(
                f"wrote {len(evidence)} uploads of out-of-fold evidence to {report / 'evidence.csv'}"
            )
        result = tune(
            evidence,
            current=params,
            threshold=DEFAULT_THRESHOLD,
            n=args.candidates,
            seed=args.seed,
            progress=say,
        )
    except (FileNotFoundError, ValueError, OSError) as e:
        say(f"error: {e}")
        return 2
    report.mkdir(parents=True, exist_ok=True)
    (report / "tuning.json").write_text(json.dumps(result, indent=2) + "\n")
    _report_chosen(
        report, evidence, result, data=data, batch=batch, interval_s=args.interval_s, seed=args.seed
    )
    n = result["nested_pooled"]
    say(
        f"trust tuning: {result['folds']} folds, {result['candidates']} parameter sets; held-out "
        f"(nested) ANIA {n['ania']:.2f}, detected {n['detected']:.3f}, false lockouts "
        f"{n['false_lockouts_per_1000']:.2f} per 1000; chosen {result['chosen']}"
    )
    if args.json:
        print(json.dumps({k: result[k] for k in ("folds", "nested_pooled", "nested", "chosen")}))
    return 0


def _report_chosen(
    report: Path,
    evidence: list[Any],
    tuning: dict[str, Any],
    *,
    data: Path,
    batch: dict[str, int],
    interval_s: float,
    seed: int,
) -> None:
    """The chosen parameters replayed by core.trust on the out-of-fold evidence: trace and report."""
    from cli.trust_report import write_trust_report
    from cli.trust_tuning import params_of
    from core.trust import evaluation as te

    params = params_of(tuning["chosen"])
    uploads = [e.upload for e in evidence]
    ev = {e.upload: (e.score, e.llr) for e in evidence}
    rows, result, details = _replayed(
        uploads,
        ev,
        params=params,
        threshold=DEFAULT_THRESHOLD,
        users=len({u.user for u in uploads}),
    )
    te.write_trace(report / "trace.csv", rows)
    write_trust_report(
        report,
        rows,
        result,
        details=details,
        setup={
            "data": str(data),
            "evaluation": (
                f"{tuning['folds']} subject folds; each fold's sessions scored by models that did "
                "not train on its users (where retrained), takeovers within the fold; fusion "
                "parameters as chosen on all folds (nested per-fold figures in tuning.json)"
            ),
            "batch": batch,
            "interval_s": interval_s,
            "threshold": DEFAULT_THRESHOLD,
            "fusion": tuning["chosen"],
            "nested": tuning["nested_pooled"],
        },
        rng=random.Random(seed),
    )
    say(f"wrote {report / 'trace.csv'} and the report of the chosen parameters in {report}")
