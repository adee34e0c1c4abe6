"""Choosing the fusion's parameters on subject folds of development users (docs/trust.md).

Input: out-of-fold evidence (cli/trust_folds.py): every upload of every fold's sessions
with the score its fold's models gave it. A random sample of a grid of fusion
parameters is replayed on every fold; for each fold, the parameters are chosen on the
other folds only and the fold's own figures are reported with them (nested), and the
values to ship are chosen on all folds. Replays here use a fast equivalent of
``core.trust.fusion.fuse`` (sessions last minutes: nothing reaches max_age_s); the
chosen parameters are replayed again with the production code, which must agree.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cli.trust_folds import Evidence
from core.trust.evaluation import figures, replay, trust_factors
from core.trust.fusion import FusionParams

ANIA_GOAL = 1.5  # impostor uploads before the lock that a takeover may take (docs/trust.md)

# the fusion parameters tried, after each factor's half-lives (HALF_LIFE_GRID of its data set)
FUSION_GRID: dict[str, Sequence[Any]] = {
    "llr_clip": (1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
    "llr_clip_negative": (None, 4.0, 8.0, 12.0, 16.0),
    "weak_llr": (0.0, 0.25, 0.5, 1.0, 2.0),
    "prior_probability": (0.5, 0.7, 0.9, 0.97),
    "max_samples": (1, 2, 3, 20),
}


def search_grid() -> dict[str, Sequence[Any]]:
    """Every parameter `--folds` tries and its values: the half-lives first, factor by factor."""
    from pipelines.evaluation.harness import factor_module

    half_lives = {
        f"half_life_{f}": tuple(factor_module(f, "dataset").HALF_LIFE_GRID) for f in trust_factors()
    }
    return half_lives | FUSION_GRID


@dataclass(frozen=True)
class Counts:
    """What the figures are made of, so folds pool by adding."""

    actions: int = 0  # impostor uploads to the first lock, summed over takeovers
    takeovers: int = 0
    detected: int = 0
    genuine_uploads: int = 0
    false_lockouts: int = 0
    margin: float = math.inf  # lowest log-odds above the lock point over genuine sessions

    def __add__(self, o: Counts) -> Counts:
        a, b = astuple(self), astuple(o)
        return Counts(
            a[0] + b[0],
            a[1] + b[1],
            a[2] + b[2],
            a[3] + b[3],
            a[4] + b[4],
            min(self.margin, o.margin),
        )

    def figures(self) -> dict[str, float]:
        fl = self.false_lockouts
        return {
            "ania": self.actions / self.takeovers if self.takeovers else 0.0,
            "detected": self.detected / self.takeovers if self.takeovers else 0.0,
            "false_lockouts_per_1000": 1000.0 * fl / self.genuine_uploads
            if self.genuine_uploads
            else 0.0,
            "anga": self.genuine_uploads / fl if fl else float(self.genuine_uploads),
        }

    def key(self) -> tuple[float, ...]:
        """Fewest false lockouts, most takeovers detected, ANIA within its goal, then the widest
        margin of the genuine sessions above the lock point, then the lowest ANIA.

        ANIA below its goal buys nothing, while the margin is what keeps an unseen user's
        genuine sessions from locking: past the goal, slack in ANIA is spent on the margin.
        """
        ania = round(self.figures()["ania"], 9)
        over = max(0.0, round(ania - ANIA_GOAL, 9))
        return (self.false_lockouts, -self.detected, over, -self.margin, ania)


def astuple(c: Counts) -> tuple[int, ...]:
    return (c.actions, c.takeovers, c.detected, c.genuine_uploads, c.false_lockouts)


def params_of(choice: dict[str, Any]) -> FusionParams:
    return FusionParams(
        prior_probability=float(choice["prior_probability"]),
        half_life_s={f: float(choice[f"half_life_{f}"]) for f in trust_factors()},
        max_samples=int(choice["max_samples"]),
        llr_clip=float(choice["llr_clip"]),
        llr_clip_negative=choice["llr_clip_negative"],
        weak_llr=float(choice["weak_llr"]),
    )


Compiled = list[
    tuple[bool, list[tuple[float, str, bool, float]]]
]  # (genuine kind, [(t, f, imp, llr)])


def compile_sessions(evidence: Sequence[Evidence]) -> dict[int, Compiled]:
    """Per fold: each session as (is genuine session, uploads in step order)."""
    by_session: dict[tuple[int, int], list[Evidence]] = defaultdict(list)
    for e in evidence:
        by_session[(e.fold, e.upload.session)].append(e)
    out: dict[int, Compiled] = defaultdict(list)
    for (fold, _), es in sorted(by_session.items()):
        es.sort(key=lambda e: e.upload.step)
        out[fold].append(
            (
                es[0].upload.kind == "genuine",
                [(e.upload.t_s, e.upload.factor, e.upload.impostor, e.llr) for e in es],
            )
        )
    return out


def fast_counts(sessions: Compiled, p: FusionParams, threshold: float) -> Counts:
    """The same lock and reset rule and figures as core.trust.evaluation, without datetimes."""
    prior = math.log(p.prior_probability / (1 - p.prior_probability))
    lock_at = math.log(threshold / (1 - threshold))
    margin = math.inf
    half = {f: p.half_life(f) for f in trust_factors()}
    actions = takeovers = detected = genuine_uploads = false_lockouts = 0
    for genuine, uploads in sessions:
        held: list[tuple[float, str, float]] = []
        impostor_seen = 0
        caught = False
        for t, factor, impostor, llr in uploads:
            held.append((t, factor, p.evidence(llr)))
            # summed in fuse's order (per factor newest first, factors by name) for equal floats
            used: dict[str, list[float]] = defaultdict(list)
            for t_i, f_i, ev in reversed(held):
                if len(used[f_i]) < p.max_samples:
                    used[f_i].append(ev * 2.0 ** (-(t - t_i) / half[f_i]))
            total = prior + sum(sum(used[f]) for f in sorted(used))
            prob = (
                1.0 / (1.0 + math.exp(-total))
                if total >= 0
                else math.exp(total) / (1 + math.exp(total))
            )
            locked = prob < threshold
            if genuine:
                genuine_uploads += 1
                false_lockouts += locked
                margin = min(margin, total - lock_at)
            elif impostor and not caught:
                impostor_seen += 1
                if locked:
                    caught = True
            if locked and not impostor:
                held = []
        if not genuine and impostor_seen:
            takeovers += 1
            actions += impostor_seen
            detected += caught
    return Counts(actions, takeovers, detected, genuine_uploads, false_lockouts, margin)


def candidates(n: int, seed: int, current: dict[str, Any]) -> list[dict[str, Any]]:
    """`n` distinct grid points drawn with `seed`, the current settings first."""
    rng = random.Random(seed)
    grid = search_grid()
    keys = list(grid)
    seen, out = set(), [current]
    space = math.prod(len(grid[k]) for k in keys)
    if space <= n:
        return [current] + [
            dict(zip(keys, v, strict=True)) for v in itertools.product(*grid.values())
        ]
    while len(out) < n:
        c = {k: rng.choice(grid[k]) for k in keys}
        sig = tuple(c.values())
        if sig not in seen:
            seen.add(sig)
            out.append(c)
    return out


def current_choice(p: FusionParams) -> dict[str, Any]:
    return {
        **{f"half_life_{f}": p.half_life(f) for f in trust_factors()},
        "llr_clip": p.llr_clip,
        "llr_clip_negative": p.llr_clip_negative,
        "weak_llr": p.weak_llr,
        "prior_probability": p.prior_probability,
        "max_samples": p.max_samples,
    }


def tune(
    evidence: Sequence[Evidence],
    *,
    current: FusionParams,
    threshold: float,
    n: int = 1500,
    seed: int = 0,
    progress: Any = None,
) -> dict[str, Any]:
    """Nested choice per fold, the choice on all folds, and the production replay's check."""
    compiled = compile_sessions(evidence)
    folds = sorted(compiled)
    grid = candidates(n, seed, current_choice(current))
    table: list[dict[int, Counts]] = []
    for i, c in enumerate(grid):
        p = params_of(c)
        table.append({f: fast_counts(compiled[f], p, threshold) for f in folds})
        if progress and (i + 1) % 250 == 0:
            progress(f"tuning: {i + 1}/{len(grid)} parameter sets replayed")

    def best(on: Sequence[int]) -> int:
        return min(range(len(grid)), key=lambda i: sum((table[i][f] for f in on), Counts()).key())

    nested = []
    pooled = Counts()
    for f in folds:
        i = best([g for g in folds if g != f])
        pooled = pooled + table[i][f]
        nested.append(
            {
                "fold": f + 1,
                "chosen_on_other_folds": grid[i],
                **table[i][f].figures(),
                "takeovers": table[i][f].takeovers,
                "genuine_uploads": table[i][f].genuine_uploads,
            }
        )
    final = best(folds)
    chosen = grid[final]
    # the production fusion on the same evidence must give the same figures
    params = params_of(chosen)
    uploads = [e.upload for e in evidence]
    check = {}
    for f in folds:
        ups = [u for u, e in zip(uploads, evidence, strict=True) if e.fold == f]
        ev = {u: (e.score, e.llr) for u, e in zip(uploads, evidence, strict=True) if e.fold == f}
        prod = figures(replay(ups, ev, params=params, threshold=threshold))
        fast = table[final][f].figures()
        if prod.summary() != fast:
            raise AssertionError(
                f"fast replay disagrees with core.trust on fold {f + 1}: {prod} vs {fast}"
            )
        check[f + 1] = prod.summary()
    per_factor = {}
    for factor in trust_factors():
        only = [e for e in evidence if e.upload.factor == factor]
        alone = compile_sessions(only)
        per_factor[factor] = sum(
            (fast_counts(alone[f], params, threshold) for f in folds), Counts()
        ).figures()
    return {
        "folds": len(folds),
        "candidates": len(grid),
        "seed": seed,
        "threshold": threshold,
        "nested": nested,
        "nested_pooled": pooled.figures(),
        "chosen": chosen,
        "chosen_all_folds": check,
        "chosen_pooled": sum((table[final][f] for f in folds), Counts()).figures(),
        "chosen_per_factor": per_factor,
        "current": {"params": grid[0], **sum((table[0][f] for f in folds), Counts()).figures()},
        "grid": {k: list(v) for k, v in search_grid().items()},
        "params": asdict(params),
    }
