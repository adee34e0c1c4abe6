"""Trust over sessions: pairing, session construction, the lock and reset rule, ANIA and ANGA."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.trust.evaluation import (
    TraceRow,
    Upload,
    build_sessions,
    figures,
    pair_subjects,
    read_trace,
    replay,
    trace_figures,
    write_trace,
)
from core.trust.fusion import FusionParams

NO_DECAY = FusionParams(half_life_s={}, default_half_life_s=1e12, llr_clip=8.0)


def test_pairing_sorts_ids_by_their_numbers_and_keeps_the_smallest_count() -> None:
    # given three data sets of different sizes, ids in no particular order
    ids = {
        "keystroke": ["s010", "s002", "s003"],
        "gait": ["user10", "user02"],
        "face": ["s10", "s2", "s1"],
    }
    # when they are paired
    pairs = pair_subjects(ids)
    # then n = 2 users, the i-th of each sorted list together (s2 before s10)
    assert pairs == [
        {"keystroke": "s002", "gait": "user02", "face": "s1"},
        {"keystroke": "s003", "gait": "user10", "face": "s2"},
    ]


def _steps(uploads: list[Upload], session: int) -> list[tuple[str, int, int]]:
    return [(u.factor, u.source, u.batch) for u in uploads if u.session == session]


def test_sessions_rotate_the_factors_until_one_runs_out_and_takeovers_switch_after_a_third() -> (
    None
):
    # given three users with different numbers of probe batches per factor
    available = [
        {"keystroke": 3, "gait": 1, "face": 2},
        {"keystroke": 2, "gait": 2, "face": 2},
        {"keystroke": 4, "gait": 4, "face": 1},
    ]
    # when the sessions are built
    uploads = build_sessions(available, interval_s=60.0)
    # then genuine sessions end at the first factor with no batch left
    assert _steps(uploads, 0) == [
        ("keystroke", 0, 0),
        ("gait", 0, 0),
        ("face", 0, 0),
        ("keystroke", 0, 1),
    ]
    assert len(_steps(uploads, 1)) == 6 and len(_steps(uploads, 2)) == 5
    # and a takeover keeps floor(length / 3) owner uploads, then the impostor's own first batches
    assert _steps(uploads, 3) == [
        ("keystroke", 0, 0),
        ("gait", 1, 0),
        ("face", 1, 0),
        ("keystroke", 1, 0),
    ]
    assert _steps(uploads, 5) == [
        ("keystroke", 1, 0),
        ("gait", 1, 0),
        ("face", 0, 0),
        ("keystroke", 0, 0),
        ("gait", 0, 0),
        ("face", 0, 1),
    ]
    # and ends early when the impostor runs out (user 2 has one face image)
    assert _steps(uploads, 6) == [
        ("keystroke", 1, 0),
        ("gait", 1, 0),
        ("face", 2, 0),
        ("keystroke", 2, 0),
        ("gait", 2, 0),
    ]
    assert _steps(uploads, 7) == [
        ("keystroke", 2, 0),
        ("gait", 0, 0),
        ("face", 0, 0),
        ("keystroke", 0, 0),
    ]
    # and there is one genuine session per user and one takeover per ordered pair
    kinds = {u.session: (u.kind, u.user) for u in uploads}
    assert [kinds[s] for s in range(9)] == [
        ("genuine", 0),
        ("genuine", 1),
        ("genuine", 2),
        ("takeover", 0),
        ("takeover", 0),
        ("takeover", 1),
        ("takeover", 1),
        ("takeover", 2),
        ("takeover", 2),
    ]
    assert all(u.impostor == (u.source != u.user) for u in uploads)
    assert [u.t_s for u in uploads if u.session == 1] == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]


def _session(
    kind: str, llrs: list[float], impostor_from: int = 99
) -> list[tuple[Upload, tuple[float, float]]]:
    out = []
    for step, llr in enumerate(llrs):
        u = Upload(0, 0, kind, step, 60.0 * step, "keystroke", step >= impostor_from, 0, step)  # type: ignore[arg-type]
        out.append((u, (0.5, llr)))
    return out


def test_a_false_lockout_resets_trust_as_a_re_authentication_would() -> None:
    # given a genuine session whose llrs sum below zero at step 1, then a small positive one
    events = _session("genuine", [2.0, -3.0, 0.5])
    # when it is replayed with no decay and threshold 0.5
    rows = replay([u for u, _ in events], dict(events), params=NO_DECAY, threshold=0.5)
    # then step 1 locks (2 - 3 < 0); the reset drops it, so step 2 stands on +0.5 alone
    assert [r.locked for r in rows] == [False, True, False]
    assert rows[2].trust == pytest.approx(1 / (1 + 2.718281828459045**-0.5))
    assert figures(rows).false_lockouts == 1


def test_an_impostor_lock_is_the_detection_and_does_not_reset() -> None:
    # given a takeover: +3 genuine, then impostor uploads -2, -2, +0.5
    events = _session("takeover", [3.0, -2.0, -2.0, 0.5], impostor_from=1)
    rows = replay([u for u, _ in events], dict(events), params=NO_DECAY, threshold=0.5)
    # then the lock comes at the second impostor upload (3 - 4 < 0) and the evidence stays (-0.5: still locked; a reset would give +0.5)
    assert [r.locked for r in rows] == [False, False, True, True]
    f = figures(rows)
    assert (f.ania, f.detected, f.mean_detection_s) == (2.0, 1.0, 120.0)


def _row(session: int, kind: str, step: int, impostor: bool, locked: bool) -> TraceRow:
    return TraceRow(session, 0, kind, step, 60.0 * step, "gait", impostor, 0.5, 0.5, locked)  # type: ignore[arg-type]


def test_ania_and_anga_on_hand_computed_traces() -> None:
    # given two takeovers: one locked at its 2nd impostor upload, one never locked (3 impostor uploads)
    rows = [_row(1, "takeover", 0, False, False), _row(1, "takeover", 1, True, False)]
    rows += [_row(1, "takeover", 2, True, True), _row(1, "takeover", 3, True, True)]
    rows += [_row(2, "takeover", 0, False, False)] + [
        _row(2, "takeover", k, True, False) for k in (1, 2, 3)
    ]
    # and genuine sessions of 10 and 5 uploads with one false lockout each
    rows += [_row(3, "genuine", k, False, k == 4) for k in range(10)]
    rows += [_row(4, "genuine", k, False, k == 0) for k in range(5)]
    f = figures(rows)
    # then ANIA = (2 + 3) / 2, half detected, 2 lockouts in 15 uploads
    assert f.ania == 2.5 and f.detected == 0.5 and f.takeovers == 2
    assert f.false_lockouts_per_1000 == pytest.approx(2000 / 15)
    assert f.anga == 7.5 == pytest.approx(1000 / f.false_lockouts_per_1000)
    assert f.mean_detection_s == 120.0  # locked at t=120 s, last genuine upload at t=0


def test_anga_without_a_false_lockout_is_the_genuine_uploads_seen() -> None:
    rows = [_row(0, "genuine", k, False, False) for k in range(7)]
    f = figures(rows)
    assert (f.false_lockouts_per_1000, f.anga, f.ania, f.detected) == (0.0, 7.0, 0.0, 0.0)


def test_figures_recomputed_from_a_written_trace_equal_the_replayed_ones(tmp_path: Path) -> None:
    # given sessions of three users replayed with decay from per-upload scores
    available = [{"keystroke": 4, "gait": 4, "face": 4}] * 3
    uploads = build_sessions(available, interval_s=60.0)
    scores = {
        u: (0.2 if u.impostor else 0.85) if u.factor != "face" else (0.45 if u.impostor else 0.6)
        for u in uploads
    }
    params = FusionParams(
        half_life_s={"keystroke": 120.0, "gait": 300.0, "face": 60.0}, llr_clip=3.0
    )
    rows = replay(uploads, scores=scores, params=params, threshold=0.5)
    # when the trace is written and read back
    path = tmp_path / "trace.csv"
    assert write_trace(path, rows) == len(uploads)
    back = read_trace(path)
    # then the rows and every figure (fused and per factor) are the same
    assert back == rows
    again = trace_figures(back, params=params, threshold=0.5, factors=["keystroke", "gait", "face"])
    assert again["fused"] == figures(rows)
    for f in ("keystroke", "gait", "face"):
        assert again[f] == figures(
            replay(uploads, scores=scores, params=params, threshold=0.5, factors=[f])
        )
    assert (
        path.read_text().splitlines()[0]
        == "session,user,kind,step,t_s,factor,impostor,score,trust,locked"
    )


def test_reading_a_file_that_is_no_trace_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a trust trace"):
        read_trace(path)
