"""A batch over its factor's plaintext maxima fails once with `plaintext_too_large`, and
the maxima come from settings.

The upload goes through the real API (Postgres, Redis, S3); the score task runs in this
process with the real key file and the keystroke pipeline, as in test_opening.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipelines import codec
from pipelines.face.frames import FaceLimits
from tests.api.conftest import enrol_phone, post_envelope
from tests.workers.test_opening import _run_task, api, worker  # noqa: F401 - fixtures
from workers.errors import classify

MiB = 1024 * 1024


def test_plaintext_too_large_is_a_failure_never_a_retry():
    verdict = classify(codec.PlaintextError("plaintext_too_large", "64 MiB"))
    assert (verdict.outcome, verdict.code) == ("fail", "plaintext_too_large")


def test_a_keystroke_upload_carrying_60_mib_of_padding_fails_once(api, tenant, worker):  # noqa: F811
    from core.factors import load_pipeline
    from workers.runtime import apply_plaintext_limits

    worker.pipeline = load_pipeline("keystroke")
    apply_plaintext_limits(worker.pipeline, worker.settings)
    # given valid key events plus a 60 MiB array the factor never reads, in ~2 KiB of zstd
    n = 11
    frame = codec.encode(
        "keystroke",
        {
            "key": np.arange(n, dtype=np.uint16),
            "down": np.arange(n) * 100.0,
            "up": np.arange(n) * 100.0 + 50,
            "sample": np.zeros(n, np.uint32),
            "padding": np.zeros(60 * MiB, np.uint8),
        },
        compress=True,
    )
    assert len(frame) < 64 * 1024
    phone = enrol_phone(api, tenant)
    r = post_envelope(api, phone, phone.envelope(frame=frame)[1])
    assert r.status_code == 202, r.text
    # when a worker takes the job
    row = _run_task(r.json()["job_id"])
    # then it fails on its first attempt with the code, and is not queued again
    assert (row["status"], row["error_code"], row["attempts"]) == (
        "failed",
        "plaintext_too_large",
        1,
    )


def test_each_factors_maxima_come_from_settings(settings):  # type: ignore[no-untyped-def]
    from workers.runtime import apply_plaintext_limits

    class Face:
        factor = "face"
        limits = FaceLimits()

    plaintext = settings.plaintext.model_copy(
        update={"face_max_pixels": 1024, "face_max_frames": 8}
    )
    pipeline = Face()
    apply_plaintext_limits(pipeline, settings.model_copy(update={"plaintext": plaintext}))  # type: ignore[arg-type]
    assert pipeline.limits == FaceLimits(max_frames=8, max_pixels=1024)


@pytest.mark.parametrize(
    "name", ["TACIT_PLAINTEXT__GAIT_MAX_WINDOWS", "TACIT_PLAINTEXT__FACE_MAX_FRAMES"]
)
def test_maxima_cannot_be_raised_past_what_the_factor_supports(monkeypatch, name):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from core.settings import Settings

    monkeypatch.setenv(name, "100000")
    with pytest.raises(ValidationError):
        Settings()
