"""What a failed job stores: a code and, for errors that are not about the payload, a fixed message."""

from __future__ import annotations

import psycopg

from workers.errors import classify


def test_an_internal_error_stores_no_exception_text():
    # given a defect whose message holds internals (a path, a query, a secret)
    verdict = classify(KeyError("/var/run/tacit/hpke/private-keys.json SELECT secret FROM ..."))
    # then the job fails with the generic code and a message of ours
    assert (verdict.outcome, verdict.code) == ("fail", "internal_error")
    assert "private-keys" not in verdict.message and "SELECT" not in verdict.message


def test_a_dependency_error_is_retried_without_its_text():
    verdict = classify(
        psycopg.OperationalError("connection to server at 10.0.3.7, port 5432 failed: password")
    )
    assert verdict.outcome == "retry" and verdict.code == "transient_operationalerror"
    assert "10.0.3.7" not in verdict.message and "password" not in verdict.message
