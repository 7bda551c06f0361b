"""Machinery's own Go client against simulated Talos nodes, from the talosconfig hk8s writes.

Two control planes of a simulated fleet; the Go client (pkg/machinery/client, v1.13 module)
applies hk8s' rendered configs in maintenance mode (insecure), then, with the talosconfig
``hk8s talosconfig`` writes: Version over mTLS, Bootstrap (retried on FailedPrecondition
like upstream), EtcdMemberList, Kubeconfig, ServiceList, a ``nodes`` call through the first
control plane, Upgrade and Reboot. What a real client needs from a node, the simulator must
give it, in the shape machinery decodes.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import TYPE_CHECKING, Any

import pytest
import yaml

import _reference  # type: ignore[import-not-found]
from hk8s.config import parse_config
from hk8s.machineconfig import installer_image, render_machine_config
from hk8s.model import ScaledClock
from hk8s.pki import generate_talosconfig, load_secrets, write_talosconfig
from hk8s.sim.factory import TalosImage
from hk8s.sim.talos import TalosFleet

from .conftest import Oracle, _build  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from pathlib import Path

RELEASE = "v1.13.0"
TARGET = "v1.13.9"


@pytest.fixture(scope="module")
def client_oracle() -> Oracle:
    return Oracle("1.13", _build("1.13"))


async def test_machinery_client_drives_simulated_nodes(
    client_oracle: Oracle, tmp_path: Path
) -> None:
    fleet = TalosFleet(ScaledClock(50.0))
    net = random.randrange(1, 250)
    ips = [f"127.63.{net}.{n}" for n in (2, 3)]
    cluster = parse_config(
        f"name: demo\nlocation: fsn1\ntalos:\n  version: {RELEASE}\ncontrol_plane:\n  count: 3\n"
    )
    bundle = load_secrets(_reference.REFERENCE / "talos/secrets.example.yaml")
    pairs = []
    try:
        for n, ip in enumerate(ips, 1):
            fleet.install(n, TalosImage(RELEASE, "amd64"))
            await fleet.power_on(n, f"demo-cp-{n}", ip, [f"10.0.1.{n + 1}"])
            config = render_machine_config(
                cluster, bundle, cluster.pool("cp"), endpoint=ips[0], hostname=f"demo-cp-{n}",
                cert_sans=ips,
            )  # fmt: skip
            path = tmp_path / f"cp-{n}.yaml"
            path.write_text(config)
            pairs.append(f"{ip}={path}")
        talosconfig = tmp_path / "talosconfig"
        write_talosconfig(
            talosconfig, generate_talosconfig("demo", bundle.os_ca, endpoints=[ips[0]])
        )
        image = installer_image(cluster).replace(RELEASE, TARGET)
        process = await asyncio.create_subprocess_exec(
            str(client_oracle.binary), "drive", "--talosconfig", str(talosconfig),
            "--configs", ",".join(pairs), "--upgrade-image", image,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 240)
    finally:
        await fleet.close()
    assert process.returncode == 0, err.decode()
    steps: dict[str, Any] = {}
    for line in out.decode().splitlines():
        entry = json.loads(line)
        steps.setdefault(entry["step"], []).append(entry.get("detail"))
    assert [d["mode"] for d in steps["apply"]] == ["REBOOT", "REBOOT"]
    assert steps["version"] == [{"tag": RELEASE, "platform": "hcloud"}]
    assert steps["bootstrap"] == [None]
    assert sorted(steps["etcd-members"][0]) == ["demo-cp-1", "demo-cp-2"]
    kubeconfig = yaml.safe_load(steps["kubeconfig"][0])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{ips[0]}:6443"
    assert {"apid", "etcd", "kubelet", "trustd"} <= set(steps["services"][0])
    assert sorted(steps["nodes"][0]) == sorted(ips)
    assert steps["upgrade"] == ["Upgrade request received"]
    assert steps["reboot"] == [ips[0]]
