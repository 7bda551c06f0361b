"""The secrets bundle, both ways: hk8s' loads in machinery, machinery's loads in hk8s.

Machinery's ``secrets.LoadBundle`` reads what ``hk8s create`` writes, and builds configs and a
talosconfig from it; a bundle from ``secrets.NewBundle`` (what ``talosctl gen secrets``
writes: its CAs carry random key identifiers since siderolabs/crypto v0.6.3) loads in hk8s,
whose client certificate then verifies against it with OpenSSL, and whose rendered config
machinery accepts.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from hk8s.config import parse_config
from hk8s.machineconfig import render_machine_config
from hk8s.pki import generate_secrets, generate_talosconfig, load_secrets, write_secrets

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Oracle  # type: ignore[import-not-found]


def test_machinery_loads_the_bundle_hk8s_writes(oracle: Oracle, tmp_path: Path) -> None:
    bundle = generate_secrets()
    path = write_secrets(tmp_path / "secrets.yaml", bundle)
    loaded = oracle.run("load-secrets", path)
    assert loaded["cluster_id"] == bundle.cluster_id
    assert loaded["contexts"] == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_hk8s_uses_the_bundle_machinery_writes(oracle: Oracle, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    oracle.run("new-secrets", path, oracle.release)
    bundle = load_secrets(path)
    talosconfig = generate_talosconfig("demo", bundle.os_ca, endpoints=["203.0.113.10"])
    (tmp_path / "ca.pem").write_bytes(bundle.os_ca.cert_pem)
    (tmp_path / "admin.pem").write_bytes(talosconfig.crt_pem)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "admin.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    cluster = parse_config(
        f"name: demo\nlocation: fsn1\ntalos:\n  version: {oracle.release}\n"
        "control_plane:\n  count: 1\n"
    )
    config = render_machine_config(
        cluster, bundle, cluster.pool("cp"), endpoint="203.0.113.10", hostname="demo-cp-1"
    )
    (tmp_path / "cp.yaml").write_text(config)
    [result] = oracle.run("validate", tmp_path / "cp.yaml")
    assert not result.get("error"), result
