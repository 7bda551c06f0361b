"""Nodes from the cluster's point of view: cordon, eviction with PodDisruptionBudgets (as
``kubectl drain`` and hk8s drive them), node deletion, and a kubelet that stops reporting."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api, V1Eviction, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from hk8s.sim.kube import KubeAPI

CILIUM_VALUES = "kubeProxyReplacement: true\nk8sServiceHost: localhost\n"
LABELS = {"app": "web"}


@pytest.fixture
async def ready_cluster(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> list[str]:
    """Three nodes Ready (Cilium installed by its helm Job), CCM not installed."""
    core, batch = CoreV1Api(api_client), BatchV1Api(api_client)
    await apply(helm_job("cilium", "cilium", "https://helm.cilium.io/", "1.18.4", CILIUM_VALUES))

    def all_ready() -> bool:
        nodes = core.list_node().items
        return all(
            c.status == "True" for n in nodes for c in n.status.conditions if c.type == "Ready"
        )

    await eventually(all_ready, "nodes Ready")
    job = await asyncio.to_thread(batch.read_namespaced_job, "cilium-install", "kube-system")
    assert job.status.succeeded == 1
    return cluster_nodes


def _web(replicas: int) -> list[dict[str, Any]]:
    tolerations = [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "operator": "Exists"}]
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "tolerations": tolerations,
                        "containers": [{"name": "web", "image": "nginx:1.27"}],
                    },
                },
            },
        }
    ]


def _web_pods(core: CoreV1Api) -> list[Any]:
    return list(core.list_namespaced_pod("default", label_selector="app=web").items)


def _ready_pods(core: CoreV1Api, count: int) -> list[Any] | None:
    pods = [
        p
        for p in _web_pods(core)
        if p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    return pods if len(pods) == count else None


async def test_cordon_keeps_new_pods_away(
    kube: KubeAPI, api_client: ApiClient, apply: Any, eventually: Any, ready_cluster: list[str]
) -> None:
    core, apps = CoreV1Api(api_client), AppsV1Api(api_client)
    # What hk8s sends: a JSON merge patch of spec.unschedulable.
    node = await asyncio.to_thread(
        core.patch_node,
        "demo-w-1",
        {"spec": {"unschedulable": True}},
        _content_type="application/merge-patch+json",
    )
    assert node.spec.unschedulable is True
    cordoned = await asyncio.to_thread(core.list_node, field_selector="spec.unschedulable=true")
    assert [n.metadata.name for n in cordoned.items] == ["demo-w-1"]
    await apply(_web(3))
    pods = await eventually(lambda: _ready_pods(core, 3), "3 web pods ready")
    # Control plane tainted NoSchedule, demo-w-1 cordoned: everything lands on demo-w-2.
    assert {p.spec.node_name for p in pods} == {"demo-w-2"}
    taints = {t.key for t in (await asyncio.to_thread(core.read_node, "demo-w-1")).spec.taints}
    assert "node.kubernetes.io/unschedulable" in taints
    deployment = await eventually(
        lambda: (
            (d := apps.read_namespaced_deployment("web", "default")).status.ready_replicas == 3
            and d
        ),
        "deployment status",
    )
    assert deployment.status.available_replicas == 3
    assert deployment.status.observed_generation == deployment.metadata.generation


async def test_eviction_honours_disruption_budget(
    kube: KubeAPI, api_client: ApiClient, apply: Any, eventually: Any, ready_cluster: list[str]
) -> None:
    core = CoreV1Api(api_client)
    await apply(_web(2))
    pods = await eventually(lambda: _ready_pods(core, 2), "2 web pods ready")
    await apply(
        [
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"minAvailable": 2, "selector": {"matchLabels": LABELS}},
            }
        ]
    )
    victim = pods[0].metadata.name
    eviction = V1Eviction(metadata=V1ObjectMeta(name=victim, namespace="default"))
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(core.create_namespaced_pod_eviction, victim, "default", eviction)
    status, body = caught.value.status, json.loads(caught.value.body)
    del caught
    assert status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        }
    ]

    await apply(
        [
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}},
            }
        ]
    )
    node_of_victim = pods[0].spec.node_name
    # Both workers cordoned: the replacement stays Pending, so the budget stays spent.
    for node in ("demo-w-1", "demo-w-2"):
        await asyncio.to_thread(
            core.patch_node,
            node,
            {"spec": {"unschedulable": True}},
            _content_type="application/merge-patch+json",
        )
    # 201 with a Status{Success} body (eviction.go); the client models it as V1Eviction.
    await asyncio.to_thread(core.create_namespaced_pod_eviction, victim, "default", eviction)
    # The second pod is protected until the replacement is ready.
    other = pods[1].metadata.name
    other_eviction = V1Eviction(metadata=V1ObjectMeta(name=other, namespace="default"))
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(
            core.create_namespaced_pod_eviction, other, "default", other_eviction
        )
    assert caught.value.status == 429
    del caught
    spare = pods[1].spec.node_name
    await asyncio.to_thread(
        core.patch_node,
        spare,
        {"spec": {"unschedulable": False}},
        _content_type="application/merge-patch+json",
    )
    replaced = await eventually(lambda: _ready_pods(core, 2), "replacement ready")
    assert victim not in {p.metadata.name for p in replaced}
    assert node_of_victim not in {p.spec.node_name for p in replaced}


async def test_deleting_a_node_deletes_its_pods(
    kube: KubeAPI, api_client: ApiClient, apply: Any, eventually: Any, ready_cluster: list[str]
) -> None:
    core = CoreV1Api(api_client)
    await apply(_web(2))
    pods = await eventually(lambda: _ready_pods(core, 2), "2 web pods ready")
    doomed = {p.metadata.name for p in pods if p.spec.node_name == "demo-w-1"}
    assert doomed
    await asyncio.to_thread(core.delete_node, "demo-w-1")
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(core.read_node, "demo-w-1")
    assert caught.value.status == 404
    del caught

    def rescheduled() -> list[Any] | None:
        ready = _ready_pods(core, 2)
        if ready and not doomed & {p.metadata.name for p in ready}:
            return ready
        return None

    pods = await eventually(rescheduled, "pods replaced on the remaining worker")
    assert {p.spec.node_name for p in pods} == {"demo-w-2"}
    left = await asyncio.to_thread(
        core.list_pod_for_all_namespaces, field_selector="spec.nodeName=demo-w-1"
    )
    assert left.items == []


async def test_kubelet_down_makes_node_unknown_and_pods_unready(
    kube: KubeAPI, api_client: ApiClient, apply: Any, eventually: Any, ready_cluster: list[str]
) -> None:
    core = CoreV1Api(api_client)
    kube.set_node_ready("demo-cp-1", False)

    def ready_status() -> str | None:
        node = core.read_node("demo-cp-1")
        status = next(c for c in node.status.conditions if c.type == "Ready")
        return f"{status.status}: {status.message}" if status.status == "Unknown" else None

    assert await eventually(ready_status, "Ready=Unknown") == (
        "Unknown: Kubelet stopped posting node status."
    )
    apiserver = await asyncio.to_thread(
        core.read_namespaced_pod, "kube-apiserver-demo-cp-1", "kube-system"
    )
    ready = next(c for c in apiserver.status.conditions if c.type == "Ready")
    assert ready.status == "False"
    kube.set_node_ready("demo-cp-1", True)
    await eventually(lambda: ready_status() is None, "node back")


async def test_registration_labels_and_taints_like_talos(
    kube: KubeAPI, api_client: ApiClient
) -> None:
    core = CoreV1Api(api_client)
    kube.register_node("solo-cp-1", "10.0.1.9", role="control-plane", control_plane_taint=False)
    kube.register_node(
        "demo-cp-1",
        "10.0.1.1",
        "127.0.0.11",
        role="control-plane",
        labels={"pool": "cp"},
        kubelet_version="1.33.5",
    )
    solo = await asyncio.to_thread(core.read_node, "solo-cp-1")
    # allowSchedulingOnControlPlanes: labelled, but only the cloud taint and not-ready remain.
    assert "node-role.kubernetes.io/control-plane" in solo.metadata.labels
    assert "node-role.kubernetes.io/control-plane" not in {t.key for t in solo.spec.taints}
    cp = await asyncio.to_thread(core.read_node, "demo-cp-1")
    assert cp.metadata.labels["pool"] == "cp"
    assert cp.status.node_info.kubelet_version == "v1.33.5"
    assert {(a.type, a.address) for a in cp.status.addresses} == {
        ("InternalIP", "10.0.1.1"),
        ("ExternalIP", "127.0.0.11"),
        ("Hostname", "demo-cp-1"),
    }
    assert {(t.key, t.effect) for t in cp.spec.taints} >= {
        ("node-role.kubernetes.io/control-plane", "NoSchedule"),
        ("node.cloudprovider.kubernetes.io/uninitialized", "NoSchedule"),
    }
    static = await asyncio.to_thread(
        core.list_namespaced_pod, "kube-system", field_selector="spec.nodeName=demo-cp-1"
    )
    assert sorted(p.metadata.name for p in static.items) == [
        "kube-apiserver-demo-cp-1",
        "kube-controller-manager-demo-cp-1",
        "kube-scheduler-demo-cp-1",
    ]


async def test_new_pod_template_rolls_to_a_new_replicaset(
    kube: KubeAPI, api_client: ApiClient, apply: Any, eventually: Any, ready_cluster: list[str]
) -> None:
    core, apps = CoreV1Api(api_client), AppsV1Api(api_client)
    await apply(_web(2))
    await eventually(lambda: _ready_pods(core, 2), "2 web pods ready")
    changed = _web(2)
    changed[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    await apply(changed)

    def rolled() -> list[Any] | None:
        pods = _ready_pods(core, 2)
        if pods and {p.spec.containers[0].image for p in pods} == {"nginx:1.28"}:
            return pods
        return None

    pods = await eventually(rolled, "pods of the new template ready")
    sets = await asyncio.to_thread(apps.list_namespaced_replica_set, "default")
    by_replicas = sorted((rs.spec.replicas, rs.metadata.name) for rs in sets.items)
    assert [r for r, _ in by_replicas] == [0, 2]
    new_set = by_replicas[1][1]
    assert all(p.metadata.owner_references[0].name == new_set for p in pods)
    assert all(p.metadata.labels["pod-template-hash"] == new_set.rsplit("-", 1)[1] for p in pods)
    deployment = await asyncio.to_thread(apps.read_namespaced_deployment, "web", "default")
    assert deployment.metadata.generation == 2


async def test_pods_leave_an_unreachable_node_after_their_toleration(
    kube: KubeAPI, api_client: ApiClient, apply: Any, eventually: Any, ready_cluster: list[str]
) -> None:
    core = CoreV1Api(api_client)
    await apply(_web(2))
    pods = await eventually(lambda: _ready_pods(core, 2), "2 web pods ready")
    # DefaultTolerationSeconds admission: 300 s on not-ready and unreachable nodes.
    assert {
        (t.key, t.effect, t.toleration_seconds)
        for t in pods[0].spec.tolerations
        if t.toleration_seconds
    } == {
        ("node.kubernetes.io/not-ready", "NoExecute", 300),
        ("node.kubernetes.io/unreachable", "NoExecute", 300),
    }
    lost = {p.metadata.name for p in pods if p.spec.node_name == "demo-w-1"}
    assert lost
    went_down = kube.clock.now()
    kube.set_node_ready("demo-w-1", False)

    def moved() -> list[Any] | None:
        ready = _ready_pods(core, 2)
        return ready if ready and not lost & {p.metadata.name for p in ready} else None

    pods = await eventually(moved, "pods evicted from the unreachable node")
    assert kube.clock.now() - went_down >= 300
    assert {p.spec.node_name for p in pods} == {"demo-w-2"}
    node = await asyncio.to_thread(core.read_node, "demo-w-1")
    assert {(t.key, t.effect) for t in node.spec.taints} >= {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
