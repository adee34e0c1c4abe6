"""The key file as the shipped Kubernetes manifests mount it loads in the worker.

The mode, owner and groups come from the manifests themselves: the kubelet writes a
secret volume's files as root, with the volume's `defaultMode`, then (with the pod's
`fsGroup`) gives them that group and ORs in group read (0440, the volume being read-only).
The worker process runs as `runAsUser`/`runAsGroup` with `fsGroup` as a supplementary group.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core import factors as registry
from core.protocol.errors import ProtocolError
from core.protocol.keyring import PrivateKeyring, check_permissions, generate_key
from tests.docker.deploy_files import K8S_BASE, yaml_documents

REPO = Path(__file__).resolve().parents[3]
SECRET_VOLUME_RO_MASK = 0o440  # kubelet's SetVolumeOwnership for read-only volumes


def mounted(factor: str) -> dict[str, int]:
    """What the manifest of `factor`'s pool makes of the key file and the process."""
    (deployment,) = [
        d
        for d in yaml_documents((K8S_BASE / f"worker-{factor}.yaml").read_text())
        if d.get("kind") == "Deployment"
    ]
    pod = deployment["spec"]["template"]["spec"]
    ctx = pod["securityContext"]
    (volume,) = [
        v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "tacit-hpke-keys"
    ]
    secret = volume["secret"]
    mode = next(
        (i["mode"] for i in secret.get("items", []) if "mode" in i),
        secret.get("defaultMode", 0o644),
    )
    if "fsGroup" in ctx:
        mode |= SECRET_VOLUME_RO_MASK
    return {
        "mode": mode,
        "uid": 0,
        "gid": ctx.get("fsGroup", 0),
        "run_uid": ctx["runAsUser"],
        "run_gid": ctx["runAsGroup"],
        "fs_group": ctx.get("fsGroup", ctx["runAsGroup"]),
    }


@pytest.mark.parametrize("factor", registry.names())
def test_the_manifests_key_file_passes_the_loaders_check(factor, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    m = mounted(factor)
    # given the process the manifest runs, and the file the kubelet writes
    monkeypatch.setattr(os, "geteuid", lambda: m["run_uid"])
    monkeypatch.setattr(os, "getegid", lambda: m["run_gid"])
    monkeypatch.setattr(os, "getgroups", lambda: [m["run_gid"], m["fs_group"]])
    st = os.stat_result((stat.S_IFREG | m["mode"], 0, 0, 1, m["uid"], m["gid"], 100, 0, 0, 0))
    # then the loader accepts it
    check_permissions(Path("/var/run/tacit/hpke/private-keys.json"), st)
    # but not the same file readable by others, writable by the group, or owned by someone else
    for bad in (
        os.stat_result(
            (stat.S_IFREG | m["mode"] | 0o004, 0, 0, 1, m["uid"], m["gid"], 100, 0, 0, 0)
        ),
        os.stat_result(
            (stat.S_IFREG | m["mode"] | 0o020, 0, 0, 1, m["uid"], m["gid"], 100, 0, 0, 0)
        ),
        os.stat_result((stat.S_IFREG | m["mode"], 0, 0, 1, 4242, m["gid"], 100, 0, 0, 0)),
        os.stat_result((stat.S_IFREG | m["mode"], 0, 0, 1, m["uid"], 4242, 100, 0, 0, 0)),
    ):
        with pytest.raises(ProtocolError) as e:
            check_permissions(Path("k"), bad)
        assert e.value.code == "keyring_insecure_permissions"


@pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to give the file to root and become the pod's user"
)
@pytest.mark.parametrize("factor", registry.names())
def test_a_process_running_as_the_pod_loads_the_file_as_mounted(factor) -> None:  # type: ignore[no-untyped-def]
    m = mounted(factor)
    # given the key file with the manifest's mode, owned by root and the pod's fsGroup
    folder = Path(tempfile.mkdtemp(prefix="tacit-hpke-"))
    try:
        os.chown(folder, 0, m["gid"])
        os.chmod(folder, 0o2750)  # the kubelet's setgid, group-traversable volume folder
        path = folder / "private-keys.json"
        ring = PrivateKeyring()
        key_id, priv, _ = generate_key()
        ring.add(key_id, priv)
        ring.write(path)
        os.chown(path, m["uid"], m["gid"])
        os.chmod(path, m["mode"])
        # when a process with the pod's user and groups loads it (it drops to them after
        # starting: the interpreter may live where the pod's user cannot read)
        code = (
            "import os, sys; from core.protocol.keyring import PrivateKeyring as R, generate_key; "
            "R().add(*generate_key()[:2]); "  # every lazy import done while the stdlib is readable
            "os.setgroups([int(sys.argv[4])]); os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[2])); "
            "print(R.load(sys.argv[1]).current_key_id)"
        )
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                str(path),
                str(m["run_uid"]),
                str(m["run_gid"]),
                str(m["fs_group"]),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # then it reads the current key
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == key_id
    finally:
        for p in folder.glob("*"):
            p.unlink()
        folder.rmdir()
