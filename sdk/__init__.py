"""Tacit device SDK (Python reference client); see docs/protocol.md."""

from sdk.client import (
    DeviceClient,
    DeviceCredentials,
    ServerKey,
    UploadError,
    UploadReceipt,
    current_server_key,
    fetch_server_keys,
    parse_server_keys,
    redeem_enrolment,
)

__all__ = [
    "DeviceClient",
    "DeviceCredentials",
    "ServerKey",
    "UploadError",
    "UploadReceipt",
    "current_server_key",
    "fetch_server_keys",
    "parse_server_keys",
    "redeem_enrolment",
]
