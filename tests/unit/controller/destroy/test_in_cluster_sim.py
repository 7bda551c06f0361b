"""The in-cluster step with the real KubeClient against the simulated Kubernetes API."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.controller import Destroyer
from hk8s.model import ScaledClock, Timing
from hk8s.pki import KeyAlgorithm, create_ca, generate_admin_kubeconfig
from hk8s.providers.k8s import KubeClient
from hk8s.sim.kube import KubeAPI

from .conftest import add_ccm_lb, add_cluster  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hk8s.providers.hcloud.fake import FakeHcloud

SPEED = 100.0


@pytest.fixture
async def kube() -> AsyncIterator[KubeClient]:
    clock = ScaledClock(SPEED)
    ca = create_ca(
        algorithm=KeyAlgorithm.ECDSA_P256, organization="kubernetes", now=dt.datetime.now(dt.UTC)
    )
    api = KubeAPI(ca.cert_pem, ca.key_pem, clock, external_cloud_provider=False)
    server = await api.serve("127.0.0.1", 0)
    text = generate_admin_kubeconfig("demo", ca, server.url)
    client = KubeClient.from_kubeconfig_text(text, clock=clock, timing=Timing().scaled(SPEED))
    yield client
    await client.close()
    await api.stop()


def svc(name: str, type_: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": type_, "ports": [{"port": 80}], "selector": {"app": name}},
    }


async def test_load_balancer_services_go_first_and_others_stay(
    fake: FakeHcloud, kube: KubeClient
) -> None:
    add_cluster(fake, "demo")
    await kube.apply([svc("web", "LoadBalancer"), svc("db", "ClusterIP")])
    [web] = await kube.list("v1", "Service", field_selector="metadata.name=web")
    lb = add_ccm_lb(fake, web["metadata"]["uid"])  # known to be demo's only by the UID

    destroyer = Destroyer(fake, "demo", clock=ScaledClock(SPEED), timing=Timing().scaled(SPEED),
                          kube=kube)  # fmt: skip
    plan = await destroyer.plan()
    assert plan.in_cluster is not None
    assert plan.notes == ()  # no claims API in this simulator is not a problem
    assert [s.name for s in plan.in_cluster.services] == ["web"]
    assert f"load-balancer/{fake.load_balancers[lb].name}" in {
        op.key for op in plan.plan.operations
    }

    report = await destroyer.run(plan)

    assert report.in_cluster_left == []
    assert await kube.get("v1", "Service", "web", namespace="default") is None
    assert await kube.get("v1", "Service", "db", namespace="default") is not None
    assert lb not in fake.load_balancers
    assert not [s for s in fake.servers.values() if s.labels.get("cluster") == "demo"]
