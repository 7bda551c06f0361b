"""Health checks and safety refusals, against the in-memory fakes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from hk8s.errors import AuthError, ConflictError, SecretsError, TransientAPIError
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


@pytest.mark.parametrize("took", [True, False], ids=["answer-lost", "call-lost"])
async def test_a_config_apply_that_times_out_asks_the_node_again_and_converges(
    harness: Harness, took: bool
) -> None:
    """A timed-out ApplyConfiguration may or may not have reached the node. hk8s asks the
    node which config it runs and sends it again the way the node now accepts it: over mTLS
    if it took (maintenance mode would refuse), in maintenance mode if it did not. It failed
    the whole phase before (seen at 100 nodes on a loaded machine)."""
    [node] = await built(harness, cp=1, workers=0)
    labels = {k: v for k, v in node.server.labels.items() if k != "hk8s/config-hash"}
    node = type(node)(node.desired, type(node.server)(**{**node.server.__dict__, "labels": labels}))
    config = harness.talos.configs.pop(node.address)  # back in maintenance mode, no config
    real = harness.talos.apply_config
    sent: list[bool] = []  # in maintenance mode?

    async def times_out_once(address: str, data: bytes, mode: Any, **kw: Any) -> Any:
        if kw.get("dry_run"):
            return await real(address, data, mode, **kw)
        sent.append(kw.get("maintenance", False))
        if len(sent) == 1:  # the first apply: its answer (or the call itself) is lost
            if took:
                await real(address, data, mode, **kw)
            raise TransientAPIError(f"Talos ApplyConfiguration on {address}: timed out")
        return await real(address, data, mode, **kw)

    harness.talos.apply_config = times_out_once  # type: ignore[method-assign]
    clock = ManualClock()
    applied = await configure_nodes(
        harness.hcloud, harness.talos, harness.talos, Waiter(clock, Timing()), [node],
        {node.name: config},
    )  # fmt: skip
    assert applied == [node.name]
    assert harness.talos.configs[node.address] == config
    # maintenance mode first; then mTLS if the lost call took, maintenance mode again if not
    assert sent == [True, not took]
    assert harness.hcloud.servers[node.server.id].labels["hk8s/config-hash"]
    assert clock.slept == [Timing().retry_initial]


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
