"""Continuous authentication measured over sessions: chimeric users, lockouts, ANIA and ANGA.

Pure functions over scores (no database, no models): which data-set subjects form one
chimeric user, which uploads a session holds, what the production fusion says after
each upload (with the lock and reset rule), and the figures of Mondal & Bours
("Performance evaluation of continuous authentication systems", IET Biometrics 2015).
docs/trust.md ("Measuring trust over sessions") describes the construction.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from core.trust.fusion import FusionParams, ScoreSample, fuse

Kind = Literal["genuine", "takeover"]


def trust_factors() -> tuple[str, ...]:
    """The installed factors with a data set (``<module>.dataset``): those `tacit eval trust` fuses."""
    from core import factors as registry

    return registry.providing("dataset")


UPLOAD_COLUMNS = ("session", "user", "kind", "step", "t_s", "factor", "impostor")
TRACE_COLUMNS = (*UPLOAD_COLUMNS, "score", "trust", "locked")
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # sessions start here; only differences matter


def natural_key(subject: str) -> tuple[object, ...]:
    """Sort key that orders embedded numbers by value: s2 before s10, user01 before user10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", subject))


def pair_subjects(subjects: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Chimeric users: each factor's subjects sorted, the first n (smallest count) paired in order."""
    ordered = {f: sorted(ids, key=natural_key) for f, ids in subjects.items()}
    n = min((len(ids) for ids in ordered.values()), default=0)
    return [{f: ids[i] for f, ids in ordered.items()} for i in range(n)]


@dataclass(frozen=True)
class Upload:
    """One batch of a session: which chimeric user's probe batch fills it, and when."""

    session: int
    user: int  # the session's owner (chimeric user index)
    kind: Kind
    step: int
    t_s: float
    factor: str
    impostor: bool
    source: int  # chimeric user whose probe samples the batch holds
    batch: int  # index of the batch among the source's probe batches of this factor


def build_sessions(
    available: Sequence[Mapping[str, int]],
    *,
    rotation: Sequence[str] | None = None,
    interval_s: float = 60.0,
    genuine_share: float = 1.0 / 3.0,
) -> list[Upload]:
    """Every genuine session (one per user), then every takeover (owner, impostor) in order.

    `available[u][factor]` is how many full probe batches user u has. A session rotates
    through the factors (`rotation`, by default in the order `available` names them), one upload every `interval_s`, taking each source's batches in
    recorded order, and ends when the current factor has no batch left. A takeover
    session of owner u by impostor v is as long as u's genuine session at most: the first
    floor(length * genuine_share) uploads (at least one) are u's, the rest v's from v's
    first batches, all factors from v.
    """
    users = len(available)
    rotation = list(available[0]) if rotation is None and available else list(rotation or ())
    uploads: list[Upload] = []
    session = 0

    def emit(kind: Kind, owner: int, steps: list[tuple[str, int, int]]) -> None:
        nonlocal session
        for step, (factor, source, batch) in enumerate(steps):
            uploads.append(
                Upload(
                    session,
                    owner,
                    kind,
                    step,
                    step * interval_s,
                    factor,
                    source != owner,
                    source,
                    batch,
                )
            )
        session += 1

    lengths = []
    for u in range(users):
        steps = _run(rotation, [(0, u)], available, 10**9)
        lengths.append(len(steps))
        emit("genuine", u, steps)
    for u in range(users):
        own = max(1, math.floor(lengths[u] * genuine_share))
        if lengths[u] <= own:
            continue  # too short to hold a takeover
        for v in range(users):
            if v != u:
                emit("takeover", u, _run(rotation, [(0, u), (own, v)], available, lengths[u]))
    return uploads


def _run(
    rotation: Sequence[str],
    sources: Sequence[tuple[int, int]],
    available: Sequence[Mapping[str, int]],
    steps: int,
) -> list[tuple[str, int, int]]:
    """(factor, source, batch) per step; `sources` = (first step, user) switches, in order."""
    out: list[tuple[str, int, int]] = []
    cursors: dict[tuple[int, str], int] = defaultdict(int)
    step = 0
    while step < steps:
        source = [u for first, u in sources if step >= first][-1]
        factor = rotation[step % len(rotation)]
        k = cursors[(source, factor)]
        if k >= available[source].get(factor, 0):
            break
        cursors[(source, factor)] = k + 1
        out.append((factor, source, k))
        step += 1
    return out


@dataclass(frozen=True)
class TraceRow:
    """One upload after fusion: the row `tacit eval trust --trace-out` writes."""

    session: int
    user: int
    kind: Kind
    step: int
    t_s: float
    factor: str
    impostor: bool
    score: float  # the job's calibrated score
    trust: float  # fused probability after this upload
    locked: bool  # trust below the operating threshold


def logit_of_score(score: float) -> float:
    """The llr a calibrated score at even odds stands for (+-inf at 1 and 0; fusion clips it)."""
    if score >= 1.0:
        return math.inf
    if score <= 0.0:
        return -math.inf
    return math.log(score / (1.0 - score))


def replay(
    uploads: Iterable[Upload],
    evidence: Mapping[Upload, tuple[float, float]] | None = None,
    *,
    params: FusionParams,
    threshold: float,
    factors: Sequence[str] | None = None,
    scores: Mapping[Upload, float] | None = None,
) -> list[TraceRow]:
    """Fuse after every upload of each session; lock below `threshold`, reset after a false one.

    `evidence[upload] = (score, llr)` (or `scores[upload]`, llr taken as its logit). Only
    uploads of `factors` count (all by default): a factor alone sees its own uploads.
    The user is locked when a fused trust exists and is below the threshold. A lock on a
    genuine upload is a false lockout: the owner re-authenticates, which clears the
    evidence so far (trust restarts from the prior). A lock on an impostor upload is the
    detection; the session goes on unchanged so its trust stays visible.
    """
    rows: list[TraceRow] = []
    by_session: dict[int, list[Upload]] = defaultdict(list)
    for u in uploads:
        if factors is None or u.factor in factors:
            by_session[u.session].append(u)
    for session in sorted(by_session):
        held: list[ScoreSample] = []
        for u in sorted(by_session[session], key=lambda x: x.step):
            if evidence is not None:
                score, llr = evidence[u]
            else:
                assert scores is not None, "give evidence or scores"
                score = scores[u]
                llr = logit_of_score(score)
            at = EPOCH + timedelta(seconds=u.t_s)
            held.append(ScoreSample(u.factor, score, llr, at))
            trust = fuse(held, now=at, params=params, threshold=threshold)
            locked = trust.decision == "impostor"
            rows.append(
                TraceRow(
                    u.session,
                    u.user,
                    u.kind,
                    u.step,
                    u.t_s,
                    u.factor,
                    u.impostor,
                    score,
                    trust.probability,
                    locked,
                )
            )
            if locked and not u.impostor:
                held = []
    return rows


@dataclass(frozen=True)
class LockoutFigures:
    """Mondal & Bours's figures over a set of sessions (see `figures`)."""

    ania: float  # mean impostor uploads from the takeover to the first lock
    detected: float  # share of takeovers locked before they ended
    false_lockouts_per_1000: float  # per 1,000 uploads of genuine sessions
    anga: float  # genuine uploads per false lockout
    mean_detection_s: float | None  # from the last genuine upload to the lock, detected only
    takeovers: int
    genuine_uploads: int
    false_lockouts: int

    def summary(self) -> dict[str, float]:
        """The four figures `tacit eval trust --json` prints per factor and fused."""
        return {
            "ania": self.ania,
            "detected": self.detected,
            "false_lockouts_per_1000": self.false_lockouts_per_1000,
            "anga": self.anga,
        }


def figures(rows: Iterable[TraceRow]) -> LockoutFigures:
    """ANIA, detection share, false lockouts per 1,000 genuine uploads, ANGA, time to detection.

    Takeover session: ANIA counts its impostor uploads up to and including the first
    locked one; an undetected takeover counts all its impostor uploads and counts as
    undetected. Genuine sessions: every locked upload is a false lockout; ANGA =
    genuine uploads / false lockouts (= 1000 / per-1000 figure), and with no false
    lockout the genuine uploads seen (a lower bound).
    """
    sessions: dict[int, list[TraceRow]] = defaultdict(list)
    for r in rows:
        sessions[r.session].append(r)
    actions: list[int] = []
    detection_s: list[float] = []
    detected = genuine_uploads = false_lockouts = 0
    for session in sorted(sessions):
        trace = sorted(sessions[session], key=lambda r: r.step)
        if trace[0].kind == "genuine":
            genuine_uploads += len(trace)
            false_lockouts += sum(r.locked for r in trace)
            continue
        impostor = [r for r in trace if r.impostor]
        if not impostor:
            continue
        first_lock = next((k for k, r in enumerate(impostor) if r.locked), None)
        if first_lock is None:
            actions.append(len(impostor))
            continue
        detected += 1
        actions.append(first_lock + 1)
        before = [r.t_s for r in trace if not r.impostor and r.step < impostor[0].step]
        taken_at = before[-1] if before else impostor[0].t_s
        detection_s.append(impostor[first_lock].t_s - taken_at)
    per_1000 = 1000.0 * false_lockouts / genuine_uploads if genuine_uploads else 0.0
    return LockoutFigures(
        ania=sum(actions) / len(actions) if actions else 0.0,
        detected=detected / len(actions) if actions else 0.0,
        false_lockouts_per_1000=per_1000,
        anga=genuine_uploads / false_lockouts if false_lockouts else float(genuine_uploads),
        mean_detection_s=sum(detection_s) / len(detection_s) if detection_s else None,
        takeovers=len(actions),
        genuine_uploads=genuine_uploads,
        false_lockouts=false_lockouts,
    )


def uploads_from_trace(rows: Iterable[TraceRow]) -> tuple[list[Upload], dict[Upload, float]]:
    """The uploads and scores a trace records, so it can be replayed (per factor, say)."""
    uploads, scores = [], {}
    for r in rows:
        u = Upload(r.session, r.user, r.kind, r.step, r.t_s, r.factor, r.impostor, -1, -1)
        uploads.append(u)
        scores[u] = r.score
    return uploads, scores


def upload_cells(u: Upload | TraceRow) -> list[object]:
    """The UPLOAD_COLUMNS cells of an upload or a trace row; floats at full precision."""
    return [u.session, u.user, u.kind, u.step, repr(u.t_s), u.factor, int(u.impostor)]


def upload_fields(r: Mapping[str, str]) -> tuple[int, int, Kind, int, float, str, bool]:
    """The fields `upload_cells` wrote, read back from a CSV row."""
    kind: Kind = r["kind"]  # type: ignore[assignment]
    return (
        int(r["session"]),
        int(r["user"]),
        kind,
        int(r["step"]),
        float(r["t_s"]),
        r["factor"],
        r["impostor"] == "1",
    )


def read_rows(path: Path, columns: tuple[str, ...], what: str) -> list[dict[str, str]]:
    """The rows of a CSV file whose header is exactly `columns` (ValueError naming `what` if not)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != columns:
            raise ValueError(f"{path} is not {what} (columns {','.join(columns)})")
        return list(reader)


def write_trace(path: Path, rows: Iterable[TraceRow]) -> int:
    """One CSV row per upload (TRACE_COLUMNS); floats at full precision. Returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRACE_COLUMNS)
        for r in rows:
            w.writerow([*upload_cells(r), repr(r.score), repr(r.trust), int(r.locked)])
            n += 1
    return n


def read_trace(path: Path) -> list[TraceRow]:
    """The rows `write_trace` wrote."""
    return [
        TraceRow(*upload_fields(r), float(r["score"]), float(r["trust"]), r["locked"] == "1")
        for r in read_rows(path, TRACE_COLUMNS, "a trust trace")
    ]


def trace_figures(
    rows: Sequence[TraceRow], *, params: FusionParams, threshold: float, factors: Sequence[str]
) -> dict[str, LockoutFigures]:
    """Fused figures from the trace's own lock column, and each factor alone by replaying its scores."""
    out = {"fused": figures(rows)}
    uploads, scores = uploads_from_trace(rows)
    for f in factors:
        out[f] = figures(
            replay(uploads, scores=scores, params=params, threshold=threshold, factors=[f])
        )
    return out
