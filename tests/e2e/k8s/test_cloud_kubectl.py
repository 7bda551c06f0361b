"""A user with the real kubectl on a bare control plane with the simulated cloud around it:
a LoadBalancer Service becomes a Hetzner load balancer and goes with the Service, a claim
binds to a Hetzner volume once a pod uses it, ``kubectl top`` reads metrics-server's API,
and the everyday read commands print what a real cluster prints."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from hk8s.pki import issue_certificate
from hk8s.sim.k8s._ccm_lb import FINALIZER, LABEL_SERVICE_UID

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cloud

    from hk8s.pki import CertAndKey

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


def _claim_and_pod(namespace: str) -> str:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "db", "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "db",
                    "image": "registry.k8s.io/pause:3.10",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [claim, pod]})


def test_a_claim_binds_to_a_hetzner_volume_once_a_pod_uses_it(cloud: Cloud) -> None:
    ns = cloud.namespace()
    claim = json.loads(_claim_and_pod(ns))["items"][0]
    cloud.kubectl.ok("apply", "-f", "-", stdin=json.dumps(claim))
    # hcloud-volumes waits for the first consumer: no volume before a pod uses the claim.
    events = cloud.wait_for(
        f"/api/v1/namespaces/{ns}/events",
        lambda e: any(i["reason"] == "WaitForFirstConsumer" for i in (e or {}).get("items", [])),
    )
    assert events is not None
    row = cloud.kubectl.ok("get", "pvc", "data", "-n", ns).stdout.splitlines()[1].split()
    # data Pending (no volume, capacity, modes yet) hcloud-volumes <unset> 1s
    assert row[:3] == ["data", "Pending", "hcloud-volumes"]  # the chart's default class
    assert cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}") == []

    cloud.kubectl.ok("apply", "-f", "-", stdin=_claim_and_pod(ns))
    pvc_path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data"
    pvc = cloud.wait_for(pvc_path, lambda c: (c or {}).get("status", {}).get("phase") == "Bound")
    assert pvc is not None
    pod = cloud.run_pod(ns, "db")
    node = pod["spec"]["nodeName"]
    pv_name = f"pvc-{pvc['metadata']['uid']}"
    assert pvc["spec"]["volumeName"] == pv_name
    header, line = cloud.kubectl.ok("get", "pvc", "data", "-n", ns).stdout.splitlines()
    assert header.split()[:5] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS"]
    assert line.split()[:5] == ["data", "Bound", pv_name, "10Gi", "RWO"]

    (volume,) = cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}")
    assert volume.name == pv_name and volume.size == 10 and volume.location.name == "fsn1"
    assert volume.labels == {
        "managed-by": "csi-driver",
        "pvc-name": "data",
        "pvc-namespace": ns,
        "pv-name": pv_name,
    }
    pv = cloud.kube(lambda api: api.get(f"/api/v1/persistentvolumes/{pv_name}"))
    assert pv["spec"]["csi"]["driver"] == "csi.hetzner.cloud"
    assert pv["spec"]["csi"]["volumeHandle"] == str(volume.id)
    # The attach/detach controller asked for the volume on the pod's node; it is attached.
    server_id = cloud.servers[node]
    cloud.wait_for(
        "/apis/storage.k8s.io/v1/volumeattachments",
        lambda found: any(
            v["spec"]["nodeName"] == node and v.get("status", {}).get("attached")
            for v in (found or {}).get("items", [])
        ),
    )
    assert cloud.hcloud.volumes.get_by_id(volume.id).server.id == server_id

    # The pod goes (its kubelet would confirm the deletion), the claim goes: the volume is
    # detached and deleted, and so is the PersistentVolume (reclaim policy Delete).
    cloud.kubectl.ok("delete", "pod", "db", "-n", ns, "--grace-period=0", "--force")
    cloud.kubectl.ok("delete", "pvc", "data", "-n", ns, "--wait=true", timeout=90)
    cloud.wait_for(f"/api/v1/persistentvolumes/{pv_name}", lambda p: p is None, timeout=90)
    assert cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}") == []


def test_kubectl_top_reads_metrics_server_through_the_aggregator(cloud: Cloud) -> None:
    cloud.kubectl.ok(
        "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io", "--timeout=60s",
        timeout=90,
    )  # fmt: skip
    header, *rows = cloud.kubectl.ok("top", "nodes").stdout.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert sorted(r.split()[0] for r in rows) == sorted(cloud.servers)
    for row in rows:
        _, cpu, cpu_share, memory, memory_share = row.split()
        assert cpu.endswith("m") and 0 < int(cpu[:-1]) < 2000
        assert memory.endswith("Mi") and 0 < int(memory[:-2]) < 3880
        assert cpu_share.endswith("%") and memory_share.endswith("%")

    ns = cloud.namespace()
    cloud.kubectl.ok("run", "web", "-n", ns, "--image=registry.k8s.io/pause:3.10")
    cloud.run_pod(ns, "web")
    header, row = cloud.kubectl.ok("top", "pod", "-n", ns).stdout.splitlines()
    assert header.split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert row.split()[0] == "web"

    # metrics-server authorises each request with a SubjectAccessReview: RBAC decides.
    denied = cloud.kubectl("top", "nodes", "--as=alice")
    assert denied.returncode == 1
    assert 'User "alice" cannot list resource "nodes" in API group "metrics.k8s.io"' in (
        denied.stderr
    )


def test_everyday_reads_print_tables(cloud: Cloud) -> None:
    header, *rows = cloud.kubectl.ok("get", "nodes").stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert sorted((r.split()[0], r.split()[1]) for r in rows) == [
        (name, "Ready") for name in sorted(cloud.servers)
    ]
    wide = cloud.kubectl.ok("get", "nodes", "-o", "wide").stdout.splitlines()[0].split()
    assert wide[5:8] == ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE"]

    ns = cloud.namespace()
    cloud.kubectl.ok("create", "deployment", "api", "-n", ns, "--image=registry.k8s.io/pause:3.10")
    listing = cloud.kubectl.ok("get", "all", "-A").stdout
    assert "deployment.apps/api" in listing
    assert "service/kubernetes" in listing
    assert listing.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]


def test_auth_can_i_answers_from_rbac(cloud: Cloud) -> None:
    assert cloud.kubectl.ok("auth", "can-i", "delete", "nodes").stdout.strip() == "yes"
    denied = cloud.kubectl("auth", "can-i", "list", "secrets", "--as=alice", "-n", "default")
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    ns = cloud.namespace()
    cloud.kubectl.ok("create", "rolebinding", "alice-view", "-n", ns, "--clusterrole=view",
                     "--user=alice")  # fmt: skip
    allowed = cloud.kubectl.ok("auth", "can-i", "list", "pods", "--as=alice", "-n", ns)
    assert allowed.stdout.strip() == "yes"


def test_explain_reads_the_servers_openapi(cloud: Cloud) -> None:
    out = cloud.kubectl.ok("explain", "service.spec.loadBalancerClass").stdout
    assert "KIND:       Service" in out and "FIELD: loadBalancerClass <string>" in out
    out = cloud.kubectl.ok("explain", "persistentvolumeclaims.spec.storageClassName").stdout
    assert "storageClassName" in out


def test_metrics_server_serves_only_the_api_servers_front_proxy(
    cloud: Cloud, tmp_path: Path
) -> None:
    """Straight to the metrics server, bypassing the aggregator: no certificate, or one the
    requestheader CA did not sign (the cluster CA's admin), is refused."""
    assert cloud.metrics is not None
    url = f"https://127.0.0.1:{cloud.metrics.port}/apis/metrics.k8s.io/v1beta1/nodes"

    def status(cert: CertAndKey | None) -> int | str:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if cert is not None:
            (tmp_path / "c.crt").write_bytes(cert.cert_pem)
            (tmp_path / "c.key").write_bytes(cert.key_pem)
            context.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
        headers = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, ssl.SSLError, ConnectionError) as exc:
            return f"refused: {exc}"

    def client(ca: CertAndKey, cn: str) -> CertAndKey:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        return issue_certificate(ca, now=now, validity=dt.timedelta(hours=1), common_name=cn,
                                 client_auth=True)  # fmt: skip

    assert status(None) == 401
    refused = status(client(cloud.plane.secrets.kubernetes_ca, "front-proxy-client"))
    assert refused == 401 or str(refused).startswith("refused")
    assert status(client(cloud.plane.secrets.aggregator_ca, "someone-else")) == 401
    assert status(client(cloud.plane.secrets.aggregator_ca, "front-proxy-client")) == 200


def test_load_balancer_targets_follow_the_nodes(cloud: Cloud) -> None:
    ns = cloud.namespace()
    annotations = {"load-balancer.hetzner.cloud/location": "fsn1"}
    cloud.kubectl.ok("apply", "-f", "-", stdin=_service(ns, "edge", annotations))
    path = f"/api/v1/namespaces/{ns}/services/edge"
    svc = cloud.wait_for(path, lambda s: bool(s and s.get("status", {}).get("loadBalancer")))
    assert svc is not None
    selector = f"{LABEL_SERVICE_UID}={svc['metadata']['uid']}"

    def targets() -> list[int]:
        (lb,) = cloud.hcloud.load_balancers.get_all(label_selector=selector)
        return sorted(t.server.id for t in lb.targets)

    assert targets() == sorted(cloud.servers.values())
    excluded = sorted(cloud.servers)[0]
    label = "node.kubernetes.io/exclude-from-external-load-balancers"
    cloud.kubectl.ok("label", "node", excluded, f"{label}=true")
    try:
        rest = sorted(v for k, v in cloud.servers.items() if k != excluded)
        cloud.until("the excluded node is no target", lambda: targets() == rest)
    finally:
        cloud.kubectl.ok("label", "node", excluded, f"{label}-")
    cloud.until("every node is a target", lambda: targets() == sorted(cloud.servers.values()))
    cloud.kubectl.ok("delete", "svc", "edge", "-n", ns, "--wait=true", timeout=90)
