"""Signatures checked by the standardwebhooks package; the retry policy as a pure function."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from core.webhooks import signing
from core.webhooks.policy import AttemptResult, decide, parse_retry_after

SCHEDULE = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000]


def test_headers_verify_with_the_reference_library() -> None:
    # given a secret shown to the tenant as whsec_...
    raw = signing.new_secret()
    shown = signing.format_secret(raw)
    body = b'{"type":"job.completed","timestamp":"2025-01-01T00:00:00Z","data":{"job_id":"j"}}'
    ts = int(datetime.now(UTC).timestamp())
    # when we sign a message
    headers = signing.headers([raw], "msg_1", ts, body)
    # then the reference verifier accepts it, and rejects a changed body or id
    assert shown.startswith("whsec_")
    assert Webhook(shown).verify(body, headers)["data"]["job_id"] == "j"
    with pytest.raises(WebhookVerificationError):
        Webhook(shown).verify(body.replace(b'"j"', b'"k"'), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(shown).verify(body, dict(headers, **{"webhook-id": "msg_2"}))


def test_during_rotation_both_secrets_sign_space_separated() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    body, ts = b"{}", int(datetime.now(UTC).timestamp())
    headers = signing.headers([new, old], "msg_r", ts, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(sig.startswith("v1,") for sig in headers["webhook-signature"].split(" "))
    Webhook(signing.format_secret(new)).verify(body, headers)
    Webhook(signing.format_secret(old)).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.format_secret(signing.new_secret())).verify(body, headers)


def ok(code: int | None, retry_after: float | None = None) -> AttemptResult:
    return AttemptResult(code, None if code and code < 300 else "x", 1.0, retry_after)


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_only_2xx_succeeds(code: int) -> None:
    assert decide(ok(code), attempt=1, schedule=SCHEDULE).kind == "succeeded"


@pytest.mark.parametrize("code", [None, 301, 302, 400, 404, 500])
def test_everything_else_is_retried_on_the_schedule(code: int | None) -> None:
    # attempt n failed: the next waits schedule[n] (attempt 1 was immediate, then 5 s, then 5 min)
    assert decide(ok(code), attempt=1, schedule=SCHEDULE).delay_s == 5
    assert decide(ok(code), attempt=2, schedule=SCHEDULE).delay_s == 300
    assert decide(ok(code), attempt=7, schedule=SCHEDULE).delay_s == 36_000


def test_after_the_last_attempt_the_delivery_is_dead_with_its_reason() -> None:
    v = decide(ok(500), attempt=len(SCHEDULE), schedule=SCHEDULE)
    assert v.kind == "dead" and "HTTP 500" in v.reason and "8 attempts" in v.reason


def test_410_means_gone() -> None:
    assert decide(ok(410), attempt=1, schedule=SCHEDULE).kind == "gone"


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_throttling_answers_honour_retry_after(code: int) -> None:
    assert decide(ok(code, 120), attempt=1, schedule=SCHEDULE).delay_s == 120
    # but never sooner than the schedule, and not beyond the cap
    assert decide(ok(code, 1), attempt=2, schedule=SCHEDULE).delay_s == 300
    assert (
        decide(ok(code, 10**9), attempt=1, schedule=SCHEDULE, max_retry_after_s=3600).delay_s
        == 3600
    )
    # a 500 with Retry-After keeps to the schedule
    assert decide(ok(500, 120), attempt=1, schedule=SCHEDULE).delay_s == 5


def test_jitter_spreads_delays_within_bounds() -> None:
    rng = random.Random(7)
    delays = {
        decide(ok(500), attempt=2, schedule=SCHEDULE, jitter=0.2, rng=rng).delay_s
        for _ in range(50)
    }
    assert len(delays) > 40 and min(delays) >= 240 and max(delays) <= 360


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    )
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
