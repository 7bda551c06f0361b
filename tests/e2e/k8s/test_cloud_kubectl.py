"""A user with the real kubectl on a bare control plane with the simulated cloud around it:
a LoadBalancer Service becomes a Hetzner load balancer and goes with the Service, a claim
binds to a Hetzner volume once a pod uses it, ``kubectl top`` reads metrics-server's API,
and the everyday read commands print what a real cluster prints."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from hk8s.sim.k8s._ccm_lb import FINALIZER, LABEL_SERVICE_UID

if TYPE_CHECKING:
    from conftest import Cloud

pytestmark = pytest.mark.e2e


def _service(namespace: str, name: str, annotations: dict[str, str]) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": name},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    )


def test_a_load_balancer_service_gets_a_hetzner_load_balancer_and_loses_it(cloud: Cloud) -> None:
    ns = cloud.namespace()
    manifest = _service(ns, "web", {"load-balancer.hetzner.cloud/location": "nbg1"})
    cloud.kubectl.ok("apply", "-f", "-", stdin=manifest)
    path = f"/api/v1/namespaces/{ns}/services/web"
    svc = cloud.wait_for(path, lambda s: bool(s and s.get("status", {}).get("loadBalancer")))
    assert svc is not None
    uid = svc["metadata"]["uid"]
    assert FINALIZER in svc["metadata"]["finalizers"]

    (lb,) = cloud.hcloud.load_balancers.get_all(label_selector=f"{LABEL_SERVICE_UID}={uid}")
    assert lb.name == ("a" + uid).replace("-", "")[:32]
    assert lb.location.name == "nbg1" and lb.load_balancer_type.name == "lb11"
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert [(s.listen_port, s.destination_port, s.protocol) for s in lb.services] == [
        (80, node_port, "tcp")
    ]
    assert sorted(t.server.id for t in lb.targets) == sorted(cloud.servers.values())
    assert [p.network.id for p in lb.private_net] == [cloud.network_id]

    table = cloud.kubectl.ok("get", "svc", "web", "-n", ns).stdout
    header, row = table.splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    # As the CCM reports it: public IPv4 and IPv6 (one address, not a /64), the private IP
    # (kubectl lists them sorted).
    assert set(row.split()[3].split(",")) == {
        lb.public_net.ipv4.ip,
        lb.public_net.ipv6.ip,
        lb.private_net[0].ip,
    }
    assert "/" not in lb.public_net.ipv6.ip
    assert f"80:{node_port}/TCP" in row
    events = cloud.kubectl.ok("get", "events", "-n", ns, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"EnsuringLoadBalancer", "EnsuredLoadBalancer"} <= reasons

    cloud.kubectl.ok("delete", "svc", "web", "-n", ns, "--wait=true", timeout=90)
    assert cloud.hcloud.load_balancers.get_all(label_selector=f"{LABEL_SERVICE_UID}={uid}") == []


def test_without_a_location_the_service_stays_pending_with_upstreams_reason(cloud: Cloud) -> None:
    ns = cloud.namespace()
    cloud.kubectl.ok("apply", "-f", "-", stdin=_service(ns, "nowhere", {}))
    events = cloud.wait_for(
        f"/api/v1/namespaces/{ns}/events",
        lambda e: any(i["reason"] == "SyncLoadBalancerFailed" for i in (e or {}).get("items", [])),
    )
    assert events is not None
    (failed,) = {i["message"] for i in events["items"] if i["reason"] == "SyncLoadBalancerFailed"}
    assert "neither load-balancer.hetzner.cloud/location nor" in failed
    row = cloud.kubectl.ok("get", "svc", "nowhere", "-n", ns).stdout.splitlines()[1]
    assert row.split()[3] == "<pending>"
    # Nothing was made, so deleting the Service is not held up.
    cloud.kubectl.ok("delete", "svc", "nowhere", "-n", ns, "--wait=true", timeout=60)
