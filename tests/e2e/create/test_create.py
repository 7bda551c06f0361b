"""``hk8s create`` end to end against the simulated world: healthy clusters, re-runs, client
configs that work, the token kept out of everything hk8s prints or writes."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from typing import TYPE_CHECKING

import pytest

from hk8s.config import ADDON_CHARTS, DEFAULT_TALOS_VERSION
from hk8s.pki import load_talosconfig
from hk8s.providers.talos import TalosClient, TalosCredentials

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import CreateWorld

CLUSTER_3_2 = """\
name: demo
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 2
"""


def assert_servers(world: CreateWorld, expected: dict[str, str]) -> None:
    """Exactly these servers (name -> pool) exist, labelled as hk8s labels them."""
    servers = world.servers()
    assert sorted(servers) == sorted(expected)
    for name, labels in servers.items():
        role = "control-plane" if expected[name] == "cp" else "worker"
        assert labels["cluster"] == "demo"
        assert labels["managed-by"] == "hk8s"
        assert labels["pool"] == expected[name]
        assert labels["role"] == role
        assert labels["hk8s/cluster-id"]
        assert labels["hk8s/config-hash"]


def assert_token_absent(world: CreateWorld) -> None:
    """The Hetzner token (also base64-encoded, as in the Secret's data) is in no output of any
    run and in no file hk8s wrote."""
    forms = (world.token, base64.b64encode(world.token.encode()).decode())
    for text in world.outputs:
        assert not any(form in text for form in forms)
    for path in world.written_files():
        data = path.read_bytes()
        assert not any(form.encode() in data for form in forms), path


def assert_private(*paths: object) -> None:
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path  # type: ignore[attr-defined]


def kube_nodes(kubeconfig: object) -> dict[str, bool]:
    """Node name -> Ready, listed with the official kubernetes client."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    nodes = api.list_node().items
    return {
        n.metadata.name: any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
        for n in nodes
    }


def talos_versions(talosconfig: object) -> list[str]:
    """Every endpoint of the talosconfig answers Version over mTLS."""
    identity = load_talosconfig(str(talosconfig))

    async def ask() -> list[str]:
        tags = []
        for endpoint in identity.endpoints:
            async with TalosClient(
                [endpoint], credentials=TalosCredentials.from_talosconfig(identity)
            ) as client:
                tags += [r.unwrap().tag for r in await client.version()]
        return tags

    return asyncio.run(ask())


def node_taints(kubeconfig: object) -> dict[str, list[str]]:
    """Node name -> its taints as ``key:Effect``."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    return {
        n.metadata.name: [f"{t.key}:{t.effect}" for t in n.spec.taints or []]
        for n in api.list_node().items
    }


def test_three_plus_two_comes_up_healthy_and_a_rerun_changes_nothing(world: CreateWorld) -> None:
    world.write_config(CLUSTER_3_2)
    result = world.hk8s("create", "-o", "json")
    summary = json.loads(result.stdout)
    pools = {f"demo-cp-{i}": "cp" for i in (1, 2, 3)}
    pools |= {f"demo-workers-{i}": "workers" for i in (1, 2)}
    assert_servers(world, pools)
    assert summary["secrets_generated"] is True
    assert sorted(summary["configured"]) == sorted(pools)
    assert all(check["ok"] for check in summary["health"])
    secrets, kubeconfig, talosconfig = (
        world.dir / n for n in ("secrets.yaml", "kubeconfig", "talosconfig")
    )
    assert summary["kubeconfig"] == str(kubeconfig)
    assert_private(secrets, kubeconfig, talosconfig)
    # the endpoint is the API load balancer; both client configs work with real clients
    assert summary["endpoint"] in kubeconfig.read_text()
    assert kube_nodes(kubeconfig) == dict.fromkeys(pools, True)
    # The default release is Talos 1.14, whose machine config is multi-document.
    assert DEFAULT_TALOS_VERSION.startswith("v1.14.")
    assert talos_versions(talosconfig) == [DEFAULT_TALOS_VERSION] * 3
    # 1.14 writes the control-plane taint in KubeNodeConfig: once, on control planes only.
    taints = node_taints(kubeconfig)
    assert all(taints[n] == ["node-role.kubernetes.io/control-plane:NoSchedule"]
               for n in pools if "-cp-" in n)  # fmt: skip
    assert all(taints[n] == [] for n in pools if "-workers-" in n), taints

    world.reset_stats()
    # --debug: debug logging of every library must not show the token either
    again = world.hk8s("--debug", "create", "-o", "json")
    assert world.mutating() == 0
    rerun = json.loads(again.stdout)
    assert rerun["configured"] == [] and rerun["changes"] == {"create": 0, "update": 0, "delete": 0}

    health = world.hk8s("health", "-o", "json")
    assert json.loads(health.stdout)["healthy"] is True

    # client configs are regenerated from the cluster + secrets alone
    kubeconfig.unlink()
    talosconfig.unlink()
    made = world.hk8s("kubeconfig")
    assert str(kubeconfig) in made.stdout
    world.hk8s("talosconfig")
    assert_private(kubeconfig, talosconfig)
    assert len(kube_nodes(kubeconfig)) == 5
    assert talos_versions(talosconfig) == [DEFAULT_TALOS_VERSION] * 3
    assert world.mutating() == 0

    # a live cluster without its secrets bundle: refused before any change, no new PKI
    moved = secrets.rename(world.dir / "secrets.backup")
    refused = world.hk8s("create", check=False)
    assert refused.returncode == 1
    assert "secrets bundle" in refused.stderr and "hint:" in refused.stderr
    assert not secrets.exists()
    assert world.mutating() == 0
    moved.rename(secrets)
    assert_token_absent(world)


def test_missing_snapshot_with_no_build_images_is_an_error(world: CreateWorld) -> None:
    world.write_config(CLUSTER_3_2)
    result = world.hk8s("create", "--no-build-images", check=False)
    assert result.returncode == 1
    assert "no Talos snapshot" in result.stderr and "hk8s image build" in result.stderr
    assert world.servers() == {}


def test_failing_addon_job_shows_helm_output(make_world: Callable[..., CreateWorld]) -> None:
    world = make_world(
        {"kubernetes": {"failing_releases": {"metrics-server": "INSTALLATION FAILED: boom"}}}
    )
    world.write_config(CLUSTER_3_2.replace("count: 3", "count: 1"))
    result = world.hk8s("create", check=False)
    assert result.returncode == 1, result.stderr
    assert "metrics-server" in result.stderr and "INSTALLATION FAILED: boom" in result.stderr, (
        result.stderr
    )
    assert_token_absent(world)


@pytest.mark.parametrize(("location", "server_type"), [("fsn1", "cx23"), ("hil", "ccx13")])
def test_single_node_cluster(world: CreateWorld, location: str, server_type: str) -> None:
    """The default type of each kind of location is one Hetzner sells there today (the EU's
    cost-optimized CX, dedicated CCX in the US); the snapshot is built on the smallest type
    sold there (40 GB disk), so any type can boot it."""
    world.write_config(f"name: demo\nlocation: {location}\n")
    result = world.hk8s("create")
    assert "healthy (1 nodes)" in result.stdout
    assert_servers(world, {"demo-cp-1": "cp"})
    state = world.world.hcloud.state
    [server] = world.threaded.call(lambda: list(state.servers.values()))
    assert (server.server_type.name, server.location.name) == (server_type, location)
    assert world.threaded.call(lambda: state.images[server.image.id].disk_size) == 40
    # no load balancer: the endpoint is the control plane itself
    assert kube_nodes(world.dir / "kubeconfig") == {"demo-cp-1": True}

    # A changed chart pin: `plan` names it (read from Helm's releases), `create` converges it.
    world.write_config(
        f"name: demo\nlocation: {location}\naddons:\n  cilium: {{version: 1.20.1}}\n"
    )
    planned = world.hk8s("plan", "-o", "json", check=False)
    assert planned.returncode == 3, planned.stderr
    [op] = json.loads(planned.stdout)["operations"]
    assert (op["type"], op["key"]) == ("update", "addon/cilium")
    old = ADDON_CHARTS["cilium"].version
    assert op["changes"] == [{"field": "chart version", "old": old, "new": "1.20.1"}]
    world.hk8s("create")
    assert world.hk8s("plan", check=False).returncode == 0
    assert_token_absent(world)


def test_mixed_architectures(world: CreateWorld) -> None:
    world.write_config(
        """\
        name: demo
        location: fsn1
        control_plane:
          count: 1
          server_type: cx23
        workers:
          - name: arm
            count: 1
            server_type: cax21
        """
    )
    world.hk8s("create")
    assert_servers(world, {"demo-cp-1": "cp", "demo-arm-1": "arm"})
    images = world.threaded.call(
        lambda: {
            s.name: s.image.labels.get("arch") for s in world.world.hcloud.state.servers.values()
        }
    )
    assert images == {"demo-cp-1": "amd64", "demo-arm-1": "arm64"}
    assert kube_nodes(world.dir / "kubeconfig") == {"demo-cp-1": True, "demo-arm-1": True}
    health = world.hk8s("health")
    assert "FAIL" not in health.stdout

    # the arm node's machine stops answering: health says so, and exits 1
    state = world.world.hcloud.state
    arm = world.threaded.call(lambda: next(s.id for s in state.servers.values() if "arm" in s.name))
    world.threaded.run(world.world.fleet.power_off(arm))
    sick = world.hk8s("health", check=False)
    assert sick.returncode == 1
    assert "FAIL control plane services" in sick.stdout and "demo-arm-1" in sick.stdout
    assert_token_absent(world)


def test_control_planes_join_etcd_over_a_network_above_the_public_addresses(
    world: CreateWorld,
) -> None:
    # 192.168/16 sorts above the servers' public addresses: without
    # cluster.etcd.advertisedSubnets etcd would advertise the public one, which the firewall
    # closes to peer traffic, and the second and third control planes would never join.
    world.write_config(
        """\
        name: demo
        location: fsn1
        control_plane:
          count: 3
        network:
          cidr: 192.168.0.0/16
          node_subnet: 192.168.1.0/24
        """
    )
    result = world.hk8s("create")
    assert "healthy (3 nodes)" in result.stdout
    assert kube_nodes(world.dir / "kubeconfig") == dict.fromkeys(
        ["demo-cp-1", "demo-cp-2", "demo-cp-3"], True
    )
