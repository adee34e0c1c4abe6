"""Webhook bodies carry what docs/webhooks.md says, with RFC 3339 UTC timestamps (issue 14.12)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from core.settings import TrustSettings
from core.webhooks.events import job_completed
from tests.webhooks import rows
from tests.webhooks.conftest import register

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _names(text: str) -> set[str]:
    """`a, b, c{x, y}` -> {a, b, c}."""
    quoted = re.findall(r"`([^`]+)`", text)
    return {f.strip() for f in re.sub(r"\{[^}]*\}", "", quoted[0]).split(",")} if quoted else set()


def documented_completed() -> tuple[set[str], set[str]]:
    """job.completed's `data` fields in docs/webhooks.md: (every job's, a verify job's extra)."""
    common, extra, _ = _documented_row()
    return common, extra


def _documented_row() -> tuple[set[str], set[str], set[str]]:
    """(every job's fields, a verify job's extra, an enrol job's extra)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    row = next(line for line in lines if line.startswith("| `job.completed`"))
    common, _, rest = row.split("|")[3].partition("a `verify` job also")
    verify, _, enrol = rest.partition("an `enrol` job also")
    return _names(common), _names(verify), _names(enrol)


def _completed_body(api, db, tenant, *, purpose: str, llr: float | None):  # type: ignore[no-untyped-def]
    register(api, tenant, "http://127.0.0.1:9/hook", ["job.completed"])
    row = rows.job(db, tenant["id"], "enrolling", purpose=purpose, llr=llr)
    db.execute("UPDATE jobs SET finished_at = now() WHERE id = %s", (row.job_id,))
    with db.transaction():
        job_completed(db, job_id=row.job_id, trust=TrustSettings())
    payload = db.execute(
        "SELECT payload FROM webhook_messages WHERE tenant_id = %s AND event_type = 'job.completed'",
        (tenant["id"],),
    ).fetchone()["payload"]
    return json.loads(payload) if isinstance(payload, str) else payload


def test_enrol_job_completed_carries_what_the_docs_say(api, db, tenant):  # type: ignore[no-untyped-def]
    body = _completed_body(api, db, tenant, purpose="enrol", llr=None)
    assert body["type"] == "job.completed"
    assert RFC3339_Z.match(body["timestamp"]), body["timestamp"]
    common, _, enrol_extra = _documented_row()
    assert enrol_extra == {"enrolment"}
    assert common <= set(body["data"]) <= common | enrol_extra
    assert body["data"]["purpose"] == "enrol" and body["data"]["status"] == "done"


def test_verify_job_completed_carries_what_the_docs_say(api, db, tenant):  # type: ignore[no-untyped-def]
    body = _completed_body(api, db, tenant, purpose="verify", llr=1.5)
    common, extra = documented_completed()
    assert set(body["data"]) == common | extra == common | {"score"}
    assert set(body["data"]["score"]) == {"score", "decision"}


def test_every_timestamp_in_a_body_is_rfc3339_utc(api, db, tenant):  # type: ignore[no-untyped-def]
    body = _completed_body(api, db, tenant, purpose="verify", llr=1.5)
    assert RFC3339_Z.match(body["data"]["finished_at"]), body["data"]["finished_at"]
