"""``observe_status`` on a cluster made by the create flow's fakes: all of it when all is up,
and each part that is down named as a problem while the rest is still shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller_support import cluster
from hk8s.controller import Plan, StatusPorts, create_cluster, observe_status
from hk8s.errors import UnavailableError

if TYPE_CHECKING:
    from controller_support import Harness
    from hk8s.config import ClusterConfig


async def no_changes() -> Plan:
    return Plan(())


def ports(harness: Harness, kube: Any = None) -> StatusPorts:
    return StatusPorts(
        hcloud=harness.hcloud,
        talos=lambda bundle: harness.talos,  # type: ignore[arg-type,return-value]
        kube=lambda kubeconfig: kube or harness.kube,
        plan=no_changes,
    )


async def created(harness: Harness) -> ClusterConfig:
    config = cluster(cp=3, workers=1)
    await create_cluster(config, harness.ports(config), harness.options())
    return config


async def test_a_healthy_cluster_shows_every_server_with_versions_and_etcd(
    harness: Harness,
) -> None:
    config = await created(harness)
    status = await observe_status(config, ports(harness), harness.tmp / "secrets.yaml")
    assert [s.name for s in status.servers] == [
        "demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1",
    ]  # fmt: skip
    assert all(s.talos and s.ready for s in status.servers)
    assert status.etcd_members == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    assert [s.etcd_member for s in status.servers] == [True, True, True, None]
    assert status.endpoint and status.load_balancer is not None
    assert status.plan is not None and status.plan.empty


class DownKube:
    async def list_nodes(self, *, retry: bool = True) -> list[Any]:
        raise UnavailableError("connection refused")

    async def close(self) -> None:
        return None


async def test_a_kubernetes_api_that_is_down_is_a_problem_not_an_error(harness: Harness) -> None:
    config = await created(harness)
    status = await observe_status(config, ports(harness, DownKube()), harness.tmp / "secrets.yaml")
    assert any(p.startswith("Kubernetes API at https://") for p in status.problems)
    assert all(s.talos for s in status.servers)  # Talos still asked and shown
    assert all(s.ready is None for s in status.servers)  # not known, not "not ready"


async def test_without_the_secrets_bundle_hetzner_facts_are_still_shown(harness: Harness) -> None:
    config = await created(harness)
    status = await observe_status(config, ports(harness), harness.tmp / "elsewhere.yaml")
    assert len(status.servers) == 4 and all(s.talos is None for s in status.servers)
    assert any("Talos and Kubernetes not asked" in p for p in status.problems)


async def test_a_cluster_that_does_not_exist_says_so(harness: Harness) -> None:
    status = await observe_status(cluster(), ports(harness), harness.tmp / "secrets.yaml")
    assert status.servers == [] and "has no servers" in status.problems[0]
