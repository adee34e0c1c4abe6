"""Services of a test module's own: a database, a Redis db and an S3 bucket nobody else writes.

For tests that read what is queued across a whole deployment (the autoscaler, `tacit
scale`), or that a running stack's relay would race (the retention sweep): in the
session's shared database other tests leave jobs queued on purpose, and the session's
stack sweeps it. Import the fixtures into the module:
``from tests.isolated import api, db, services, settings``.
"""

from __future__ import annotations

from tests.services import service_fixtures

services, settings, db, api = service_fixtures("module", "isolated")
