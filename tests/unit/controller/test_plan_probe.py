"""``plan``'s health probe against the in-memory fakes: each node's most basic problem with
what create does about it, and a probe that reaches nothing never passes for health."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hk8s.controller import HealthLimits, probe_cluster
from hk8s.errors import UnavailableError

from .test_checks import built

if TYPE_CHECKING:
    from controller_support import Harness

LIMITS = HealthLimits(budget=5.0)


def _mtls_down(harness: Harness, *names: str) -> None:
    """These nodes answer no mTLS call (down, or in maintenance mode)."""
    talos = harness.talos
    real = talos.services

    async def services(node: str) -> Any:
        if talos.name(node) in names or node not in talos.configs:
            raise UnavailableError("connection refused")
        return await real(node)

    talos.services = services  # type: ignore[method-assign]


async def test_a_healthy_cluster_has_no_findings(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=2)
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30)
    assert probe.checked and probe.findings == []


async def test_a_node_in_maintenance_is_configured_by_create(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=2)
    worker = next(n for n in nodes if n.name == "demo-workers-2")
    harness.talos.configs.pop(worker.address)  # reset: labelled configured, in maintenance
    _mtls_down(harness)
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30)
    assert probe.checked
    assert [str(f) for f in probe.findings] == [
        "demo-workers-2: in maintenance mode (no machine config) — create applies its machine "
        "config"
    ]


async def test_an_unreachable_node_is_named_once_with_what_create_does(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=2)
    harness.kube.cordoned.add("demo-workers-1")

    async def version(node: str, *, maintenance: bool = False) -> Any:
        raise UnavailableError("connection refused")

    _mtls_down(harness, "demo-workers-2")
    harness.talos.version = version  # type: ignore[method-assign]
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30)
    found = {f.node: f for f in probe.findings}
    assert sorted(found) == ["demo-workers-1", "demo-workers-2"]
    assert found["demo-workers-2"].problem.startswith("Talos API unreachable")
    assert "create waits for it to answer" in found["demo-workers-2"].remedy
    assert "kubectl uncordon" in found["demo-workers-1"].remedy
    # a node the caller already lists (e.g. its server is off) is not listed twice
    again = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30,
                                known={"demo-workers-2"})  # fmt: skip
    assert [f.node for f in again.findings] == ["demo-workers-1"]


async def test_a_cluster_that_does_not_answer_is_not_called_healthy(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=1)
    _mtls_down(harness, *(n.name for n in nodes))

    async def version(node: str, *, maintenance: bool = False) -> Any:
        raise UnavailableError("connection refused")

    async def get(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError("Kubernetes API: connection refused")

    harness.talos.version = version  # type: ignore[method-assign]
    harness.kube.get = get  # type: ignore[method-assign]
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30)
    assert not probe.checked
    [finding] = probe.findings
    assert finding.problem.startswith("cluster health not checked: neither Talos nor")


async def test_a_probe_that_hangs_is_cut_short_and_says_so(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=1)

    async def hang(node: str) -> Any:
        await asyncio.Event().wait()

    harness.talos.etcd_members = hang  # type: ignore[method-assign]
    unbounded = HealthLimits(budget=None)
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=unbounded, within=0.05)
    assert not probe.checked
    assert probe.findings[0].problem == "cluster health not checked: no answer within 0.05s"


async def test_a_kubernetes_api_that_does_not_answer_is_one_finding(harness: Harness) -> None:
    nodes = await built(harness, cp=1, workers=1)

    async def get(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError("Kubernetes API: connection refused")

    harness.kube.get = get  # type: ignore[method-assign]
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30)
    assert probe.checked  # Talos answered: the probe reached the cluster
    assert [str(f) for f in probe.findings] == [
        "kubernetes api: Kubernetes API: connection refused — create waits for it; health fails "
        "meanwhile"
    ]


async def test_not_ready_and_missing_from_etcd_are_named(harness: Harness) -> None:
    import dataclasses

    nodes = await built(harness, cp=3, workers=1)
    harness.talos.members.remove("demo-cp-3")
    real = harness.kube.list_nodes

    async def list_nodes(*, retry: bool = True) -> Any:
        found = await real(retry=retry)
        return [dataclasses.replace(n, ready=n.name != "demo-workers-1") for n in found]

    harness.kube.list_nodes = list_nodes  # type: ignore[method-assign]
    probe = await probe_cluster(harness.talos, harness.kube, nodes, limits=LIMITS, within=30)
    assert [str(f) for f in probe.findings] == [
        "demo-cp-3: not an etcd member — create waits for it to join etcd",
        "demo-workers-1: Kubernetes node not Ready — create waits for it to be Ready",
    ]
