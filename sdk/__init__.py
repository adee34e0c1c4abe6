"""Tacit device SDK (Python reference client); see docs/protocol.md."""

from sdk.client import *  # noqa: F403 - the client's public names are the package's
from sdk.client import __all__ as __all__
