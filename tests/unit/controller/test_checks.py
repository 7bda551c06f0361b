"""Health checks and safety refusals, against the in-memory fakes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from controller_support import cluster
from hk8s.controller import (
    NodeRemover,
    Waiter,
    check_health,
    configure_nodes,
    create_cluster,
    desired_servers,
    pair_nodes,
)
from hk8s.errors import AuthError, ConflictError, SecretsError
from hk8s.model import ManualClock, Timing
from hk8s.providers.k8s import NodeTaint

if TYPE_CHECKING:
    from controller_support import Harness
    from hk8s.controller import Node


async def built(harness: Harness, cp: int = 1, workers: int = 1) -> list[Node]:
    config = cluster(cp=cp, workers=workers)
    result = await create_cluster(config, harness.ports(config), harness.options())
    servers = list(harness.hcloud.servers.values())
    desired = desired_servers(config, cluster_id="x")
    assert result.nodes == [d.name for d in desired]
    return pair_nodes(desired, servers)


async def test_health_names_what_is_wrong(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=2)
    checks = {c.name: c for c in await check_health(harness.talos, harness.kube, nodes)}
    assert all(c.ok for c in checks.values()), checks

    harness.kube.cordoned.add("demo-workers-2")
    harness.talos.members.append("demo-cp-9")
    checks = {c.name: c for c in await check_health(harness.talos, harness.kube, nodes)}
    assert not checks["nodes schedulable"].ok
    assert "demo-workers-2" in checks["nodes schedulable"].detail
    assert not checks["etcd members"].ok
    assert "expected demo-cp-1" in checks["etcd members"].detail
    assert checks["nodes ready"].ok


async def test_the_last_control_plane_is_never_removed(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=0)
    remover = NodeRemover(
        harness.hcloud, harness.talos, harness.talos, Waiter(ManualClock(), Timing())
    )
    remover.control_planes = nodes
    with pytest.raises(ConflictError, match="last control plane"):
        await remover(nodes[0].server)
    assert len(harness.hcloud.servers) == 1


async def test_a_node_of_another_pki_is_refused(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=0)
    node = nodes[0]
    labels = {k: v for k, v in node.server.labels.items() if k != "hk8s/config-hash"}
    node = type(node)(node.desired, type(node.server)(**{**node.server.__dict__, "labels": labels}))

    async def refuse(address: str, *, maintenance: bool = False) -> object:
        raise AuthError("the node refused the client certificate")

    harness.talos.version = refuse  # type: ignore[method-assign]
    waiter = Waiter(ManualClock(), Timing())
    with pytest.raises(SecretsError, match="another secrets bundle"):
        await configure_nodes(
            harness.hcloud, harness.talos, harness.talos, waiter, [node], {node.name: b"x"}
        )


async def test_a_node_still_tainted_not_ready_is_not_ready(harness: Harness) -> None:
    """The Ready condition turns True before the node lifecycle controller lifts its taint; in
    between the scheduler keeps pods off the node, so create's gate waits for the taint too."""
    nodes = await built(harness, cp=1, workers=1)
    harness.kube.taints["demo-workers-1"] = (
        NodeTaint("node.kubernetes.io/not-ready", "NoSchedule"),
    )
    checks = {c.name: c for c in await check_health(harness.talos, harness.kube, nodes)}
    assert not checks["nodes ready"].ok
    assert checks["nodes ready"].detail == "not Ready: demo-workers-1"
    harness.kube.taints["demo-workers-1"] = (
        NodeTaint("node-role.kubernetes.io/control-plane", "NoSchedule"),
    )
    checks = {c.name: c for c in await check_health(harness.talos, harness.kube, nodes)}
    assert checks["nodes ready"].ok
