"""Tacit device SDK (Python reference client); see docs/protocol.md."""

from sdk.client import (
    DeviceClient,
    DeviceCredentials,
    EnrolmentWindow,
    ServerKey,
    UploadError,
    UploadReceipt,
    current_server_key,
    fetch_server_keys,
    open_enrolment_window,
    parse_server_keys,
    redeem_enrolment,
)

__all__ = [
    "DeviceClient",
    "DeviceCredentials",
    "EnrolmentWindow",
    "ServerKey",
    "UploadError",
    "UploadReceipt",
    "current_server_key",
    "fetch_server_keys",
    "open_enrolment_window",
    "parse_server_keys",
    "redeem_enrolment",
]
