"""The SDK's tenant-side call that opens an enrolment window, against the real API."""

from __future__ import annotations

import pytest

from sdk import UploadError, open_enrolment_window


def test_open_enrolment_window_returns_the_window(api, tenant) -> None:  # type: ignore[no-untyped-def]
    w = open_enrolment_window(
        str(api.base_url), tenant["key"], "alice", ["keystroke", "gait"], ttl_s=120, http=api
    )
    assert (
        w.user == "alice"
        and w.factors == ("keystroke", "gait")
        and w.device_id is None
        and w.expires_at
    )
    listed = api.get("/v1/users/alice/enrolments", headers=tenant["headers"]).json()
    assert [x["enrolment_id"] for x in listed] == [w.enrolment_id]


def test_open_enrolment_window_raises_the_servers_code(api, tenant) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UploadError) as e:
        open_enrolment_window(str(api.base_url), tenant["key"], "alice", ["iris"], http=api)
    assert (e.value.status, e.value.code) == (422, "unknown_factor")
