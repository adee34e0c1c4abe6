from __future__ import annotations

import uuid

import pytest

from core.protocol.envelope import EnvelopeHeader, Purpose

HEADER = EnvelopeHeader(
    device_id="dev_8f3a2c",
    batch_id=uuid.UUID("0192f3a4-5b6c-7d8e-9f01-23456789abcd"),
    factor="gait",
    purpose=Purpose.VERIFY,
    capture_start_ms=1_764_240_000_000,
    capture_end_ms=1_764_240_030_000,
    key_id="k-2026-11-27-ab12",
)


@pytest.fixture
def header() -> EnvelopeHeader:
    return HEADER
