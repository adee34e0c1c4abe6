"""In the running stack only worker processes know where the private keys are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cli.stack import KEYRING_ENV
from core.protocol.keyring import PrivateKeyring, b64url

pytestmark = pytest.mark.integration


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(
        item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if item
    )


def _open_files(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.add(os.readlink(fd))
        except OSError:
            pass
    return out


def test_api_process_holds_no_private_key(stack):  # type: ignore[no-untyped-def]
    ring = PrivateKeyring.load(stack.keyring_file)
    secrets = [b64url(r.private_bytes) for r in ring.records if r.private_bytes]
    api_pid = stack.roles["api"].proc.pid
    # then the API's environment neither names the key file nor carries a key, nor has it the file open
    env = _environ(api_pid)
    assert KEYRING_ENV not in env
    assert not any(s in v for s in secrets for v in env.values())
    assert str(stack.keyring_file) not in _open_files(api_pid)
    # while every worker is told where the file is (so the check above is not vacuous)
    for name, role in stack.roles.items():
        if name.startswith("worker-"):
            assert _environ(role.proc.pid)[KEYRING_ENV] == str(stack.keyring_file)
