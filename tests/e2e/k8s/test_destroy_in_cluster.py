"""Destroy's in-cluster step with hk8s' KubeClient against the real API server: LoadBalancer
Services go first (so the cloud controller's load balancers are known by their UIDs), other
Services stay."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.controller import Destroyer
from hk8s.model import ScaledClock, Timing
from hk8s.providers.hcloud.fake import FakeHcloud

from ._machines import SPEED, machines

if TYPE_CHECKING:
    from types import ModuleType

pytestmark = pytest.mark.e2e


def _destroy_fixtures() -> ModuleType:
    """The unit tests' fake Hetzner project builders (``add_cluster``, ``add_ccm_lb``)."""
    path = Path(__file__).parents[2] / "unit" / "controller" / "destroy" / "conftest.py"
    spec = importlib.util.spec_from_file_location("destroy_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def svc(name: str, type_: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": type_, "ports": [{"port": 80}], "selector": {"app": name}},
    }


async def test_load_balancer_services_go_first_and_others_stay() -> None:
    helpers = _destroy_fixtures()
    fake = FakeHcloud()
    helpers.add_cluster(fake, "demo")
    async with machines({}) as world:
        kube = world.kube
        await kube.apply([svc("web", "LoadBalancer"), svc("db", "ClusterIP")])
        [web] = await kube.list("v1", "Service", field_selector="metadata.name=web")
        lb = helpers.add_ccm_lb(fake, web["metadata"]["uid"])  # demo's only by the UID

        timing = Timing().scaled(SPEED)
        destroyer = Destroyer(fake, "demo", clock=ScaledClock(SPEED), timing=timing, kube=kube)
        plan = await destroyer.plan()
        assert plan.in_cluster is not None
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
