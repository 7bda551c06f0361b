"""``hk8s create`` leaves version changes to ``hk8s upgrade``: a config asking for other
Talos or Kubernetes versions than the configured nodes run is refused (exit 2) before
anything changes, half-finished upgrades too; a cluster at the config's versions, and new
nodes of an upgraded cluster, are handled as always."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from controller_support import cluster
from hk8s.controller import UPGRADING_ANNOTATION, RecordingReporter, create_cluster
from hk8s.errors import UsageError

if TYPE_CHECKING:
    from controller_support import Harness
    from hk8s.config import ClusterConfig


def versions(talos: str, kubernetes: str = "1.35.0", workers: int = 1) -> ClusterConfig:
    return cluster(
        cp=1,
        workers=workers,
        extra=f"talos:\n  version: {talos}\nkubernetes:\n  version: {kubernetes}\n",
    )


async def created(harness: Harness, config: ClusterConfig) -> None:
    await create_cluster(config, harness.ports(config), harness.options())
    harness.hcloud.calls.clear()
    harness.talos.applied.clear()
    harness.talos.calls.clear()


def upgraded(harness: Harness, *names: str, to: str = "v1.13.0") -> None:
    """As if ``hk8s upgrade`` had moved these nodes to ``to``."""
    for server in harness.hcloud.servers.values():
        if server.name in names and server.public_ipv4:
            harness.talos.releases[server.public_ipv4] = to


async def refused(harness: Harness, config: ClusterConfig) -> UsageError:
    with pytest.raises(UsageError) as info:
        await create_cluster(config, harness.ports(config), harness.options())
    assert info.value.exit_code == 2
    assert "hk8s upgrade -f" in (info.value.hint or "")
    # nothing changed: no Hetzner write, no machine config
    assert harness.hcloud.mutations() == []
    assert harness.talos.applied == [] and harness.talos.calls == []
    return info.value


async def test_a_newer_talos_on_old_nodes_is_refused_naming_each_node(harness: Harness) -> None:
    await created(harness, versions("v1.12.0"))
    error = await refused(harness, versions("v1.13.0"))
    assert "demo-cp-1 runs Talos v1.12.0" in error.message
    assert "demo-workers-1 runs Talos v1.12.0" in error.message
    assert "Talos v1.13.0" in error.message


async def test_a_newer_kubernetes_is_refused_too(harness: Harness) -> None:
    await created(harness, versions("v1.12.0", "1.34.1"))
    error = await refused(harness, versions("v1.12.0", "1.35.0"))
    assert "demo-cp-1 runs Talos v1.12.0, Kubernetes 1.34.1" in error.message
    assert "demo-workers-1 runs Talos v1.12.0, Kubernetes 1.34.1" in error.message


async def test_a_half_finished_upgrade_is_refused_pointing_at_upgrade(harness: Harness) -> None:
    await created(harness, versions("v1.12.0"))
    upgraded(harness, "demo-cp-1")
    error = await refused(harness, versions("v1.13.0"))
    assert "half-finished" in error.message
    assert "demo-cp-1 already run(s)" in error.message
    assert "demo-workers-1 runs Talos v1.12.0" in error.message
    assert "finish the upgrade" in (error.hint or "")
    # ... whichever version the config names: the old one is refused the same way
    await refused(harness, versions("v1.12.0"))


async def test_a_node_an_interrupted_upgrade_left_cordoned_is_refused(harness: Harness) -> None:
    # Every node runs the config's versions, but `hk8s upgrade` was stopped before it
    # uncordoned demo-workers-1: create's health gate would wait for it in vain.
    await created(harness, versions("v1.12.0"))
    upgraded(harness, "demo-cp-1", "demo-workers-1")
    harness.kube.cordoned.add("demo-workers-1")
    harness.kube.annotations["demo-workers-1"] = {UPGRADING_ANNOTATION: "v1.13.0"}
    error = await refused(harness, versions("v1.13.0"))
    assert "demo-workers-1 was left cordoned by an interrupted upgrade" in error.message
    assert "demo-cp-1 already run(s)" in error.message
    assert "finish the upgrade" in (error.hint or "")


async def test_an_upgraded_cluster_proceeds_and_new_nodes_get_its_versions(
    harness: Harness,
) -> None:
    await created(harness, versions("v1.12.0"))
    upgraded(harness, "demo-cp-1", "demo-workers-1")
    bigger = versions("v1.13.0", workers=2)
    await create_cluster(bigger, harness.ports(bigger), harness.options())
    new = next(s for s in harness.hcloud.servers.values() if s.name == "demo-workers-2")
    assert new.public_ipv4 is not None
    assert harness.talos.releases[new.public_ipv4] == "v1.13.0"  # its installer's release
    # configured in maintenance mode like any new node; the old ones were not refused
    assert [(n, maint) for n, _, maint in harness.talos.applied if maint] == [
        ("demo-workers-2", True)
    ]


async def test_a_cluster_at_the_config_versions_is_a_no_op(harness: Harness) -> None:
    config = versions("v1.12.0")
    await created(harness, config)
    await create_cluster(config, harness.ports(config), harness.options())
    assert harness.hcloud.mutations() == [] and harness.talos.applied == []


async def test_an_api_that_is_not_up_leaves_the_talos_check(harness: Harness) -> None:
    # A first run interrupted before etcd was bootstrapped: the API cannot answer yet.
    await created(harness, versions("v1.12.0"))
    harness.kube.down = True
    reporter = RecordingReporter()
    with pytest.raises(UsageError, match=re.escape("demo-cp-1 runs Talos v1.12.0")):
        await create_cluster(versions("v1.13.0"), harness.ports(versions("v1.13.0")),
                             harness.options(), reporter)  # fmt: skip
    assert any(e.title == "Kubernetes versions not checked" for e in reporter.events)


async def test_a_node_going_down_for_its_reboot_is_waited_for(harness: Harness) -> None:
    # A re-run right after a killed one: the node that just took its config is rebooting.
    config = versions("v1.12.0")
    await created(harness, config)
    [address] = [s.public_ipv4 for s in harness.hcloud.servers.values() if s.name == "demo-cp-1"]
    assert address is not None
    harness.talos.closing[address] = 2
    await create_cluster(config, harness.ports(config), harness.options())
    assert harness.talos.closing[address] == 0 and harness.talos.applied == []


async def test_a_node_that_does_not_answer_is_left_out(harness: Harness) -> None:
    # demo-cp-1 stays down past the boot timeout: the others are still asked and named.
    await created(harness, versions("v1.12.0"))
    [address] = [s.public_ipv4 for s in harness.hcloud.servers.values() if s.name == "demo-cp-1"]
    assert address is not None
    harness.talos.closing[address] = 10**6
    reporter = RecordingReporter()
    with pytest.raises(UsageError) as info:
        config = versions("v1.13.0")
        await create_cluster(config, harness.ports(config), harness.options(), reporter)
    assert "demo-workers-1 runs Talos v1.12.0" in info.value.message
    assert "demo-cp-1 runs Talos" not in info.value.message
    assert any(e.title == "Talos version of demo-cp-1 not checked" for e in reporter.events)
    assert harness.hcloud.mutations() == []
