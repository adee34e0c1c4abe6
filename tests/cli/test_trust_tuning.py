"""The fusion tuning: its fast replay agrees with core.trust, and each fold is judged on choices made without it."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from cli.trust_folds import Evidence, read_evidence, write_evidence
from cli.trust_tuning import (
    ANIA_GOAL,
    Counts,
    candidates,
    compile_sessions,
    current_choice,
    fast_counts,
    params_of,
    tune,
)
from core.trust.evaluation import build_sessions, figures, replay
from core.trust.fusion import FusionParams


def _evidence(seed: int = 0) -> list[Evidence]:
    """Three folds of three users; genuine llrs mostly positive, impostor ones mostly negative."""
    rng = random.Random(seed)
    out = []
    base = 0
    for fold in range(3):
        for u in build_sessions([{"keystroke": 6, "gait": 6, "face": 6}] * 3, interval_s=60.0):
            llr = rng.gauss(-2.0 if u.impostor else 2.0, 2.0)
            score = 1 / (1 + 2.718281828459045**-llr)
            out.append(Evidence(fold, replace(u, session=base + u.session), score, llr))
        base = max(e.upload.session for e in out) + 1
    return out


def test_the_fast_replay_gives_the_production_figures_for_any_parameters() -> None:
    # given evidence of 27 sessions and 40 parameter sets from the grid
    evidence = _evidence()
    compiled = compile_sessions(evidence)
    for choice in candidates(41, seed=1, current=current_choice(FusionParams()))[1:]:
        p = params_of(choice)
        for fold in range(3):
            ups = [e.upload for e in evidence if e.fold == fold]
            ev = {e.upload: (e.score, e.llr) for e in evidence if e.fold == fold}
            # then the fast counts and core.trust's replay agree on every figure
            assert (
                fast_counts(compiled[fold], p, 0.5).figures()
                == figures(replay(ups, ev, params=p, threshold=0.5)).summary()
            )


def test_within_the_ania_goal_the_widest_genuine_margin_is_preferred() -> None:
    # given parameter sets with no false lockout and every takeover detected
    def counts(ania: float, margin: float, lockouts: int = 0) -> Counts:
        return Counts(round(ania * 20), 20, 20, 85, lockouts, margin)

    quick_but_close = counts(1.0, margin=0.4)
    slower_with_room = counts(1.45, margin=2.5)
    past_the_goal = counts(ANIA_GOAL + 0.1, margin=4.0)
    # then a lower ANIA within the goal does not outweigh the margin of the genuine sessions
    assert min([quick_but_close, slower_with_room], key=Counts.key) is slower_with_room
    # and ANIA past the goal loses to any set within it, whatever its margin
    assert min([past_the_goal, quick_but_close], key=Counts.key) is quick_but_close
    # and a false lockout loses to everything else
    assert min([counts(1.0, 9.0, lockouts=1), past_the_goal], key=Counts.key) is past_the_goal
    # and among equal margins the lower ANIA wins
    assert min([counts(1.4, 2.0), counts(1.2, 2.0)], key=Counts.key).actions == 24


def test_each_fold_is_scored_with_parameters_chosen_on_the_other_folds(tmp_path: Path) -> None:
    # given evidence written and read back
    path = tmp_path / "evidence.csv"
    write_evidence(path, _evidence())
    evidence = read_evidence(path)
    # when the fusion is tuned on 60 candidates
    result = tune(evidence, current=FusionParams(), threshold=0.5, n=60, seed=0)
    # then every fold reports its own figures with a choice made on the two others
    assert [n["fold"] for n in result["nested"]] == [1, 2, 3]
    assert result["candidates"] == 60 and result["current"]["params"]["llr_clip"] == 8.0
    assert set(result["nested_pooled"]) == {"ania", "detected", "false_lockouts_per_1000", "anga"}
    takeovers = sum(n["takeovers"] for n in result["nested"])
    assert takeovers == 3 * 6
    assert set(result["chosen_all_folds"]) == {1, 2, 3}


def test_eval_trust_folds_from_stored_evidence_writes_the_tuning_and_the_chosen_report(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import json

    from cli import eval as eval_command
    from core.trust.evaluation import read_trace, trace_figures

    # given out-of-fold evidence on disk
    path = tmp_path / "evidence.csv"
    write_evidence(path, _evidence(seed=3))
    parser = argparse.ArgumentParser()
    eval_command.register(parser.add_subparsers())
    report = tmp_path / "report"
    args = parser.parse_args(
        [
            "eval",
            "trust",
            "--data",
            str(tmp_path),
            "--folds",
            "3",
            "--evidence",
            str(path),
            "--report",
            str(report),
            "--candidates",
            "30",
            "--json",
        ]
    )
    # when the fusion is tuned from it
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # then the nested figures are printed and the chosen parameters' report is written
    assert summary["folds"] == 3 and len(summary["nested"]) == 3
    assert {p.name for p in report.iterdir()} >= {
        "tuning.json",
        "trace.csv",
        "report.json",
        "trust.png",
    }
    stored = json.loads((report / "report.json").read_text())
    assert stored["setup"]["fusion"] == summary["chosen"]
    params = params_of(summary["chosen"])
    again = trace_figures(
        read_trace(report / "trace.csv"), params=params, threshold=0.5, factors=["gait"]
    )
    assert again["fused"].summary() == stored["fused"]
    assert again["gait"].summary() == stored["factors"]["gait"]
