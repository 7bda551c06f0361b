"""hk8s' Kubernetes provider (``hk8s.providers.k8s.KubeClient``) against the real API server
with simulated machines, over TLS with an admin client certificate, exactly as ``hk8s create``
uses it: SSA of the rendered addon manifests, Jobs that run helm, rollouts, nodes turning
Ready, cordon + drain with a PodDisruptionBudget, node deletion.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.config import ADDON_CHARTS, parse_config
from hk8s.errors import WaitTimeoutError
from hk8s.model import ScaledClock, Timing
from hk8s.providers.k8s import (
    JobFailedError,
    KubeClient,
    render_addon_manifests,
    render_base_manifests,
)

from ._machines import NODES, SPEED, Machines, machines

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable

pytestmark = pytest.mark.e2e

TOKEN = "sim-token-" + "y" * 54
# Clock seconds (100 per wall second): the real controllers work in wall time, a few seconds
# on an idle machine, more when it is busy.
WAIT = 6000


@pytest.fixture
async def world() -> AsyncIterator[Machines]:
    async with machines() as running:
        yield running


def cluster(extra: str = "") -> Any:
    return parse_config(
        "name: demo\nlocation: fsn1\ncontrol_plane: {count: 1}\n"
        "workers: [{name: w, count: 2}]\n" + extra,
        source="cluster.yaml",
    )


async def install_addons(
    kube: KubeClient, config: Any, addons: Iterable[str] = tuple(ADDON_CHARTS)
) -> None:
    await kube.apply(render_base_manifests(config, token=TOKEN, network_id=7))
    for addon in addons:
        install = render_addon_manifests(config, addon)
        await kube.apply(install.objects)
        await kube.wait_job(install.job_namespace, install.job_name, timeout=WAIT)
        for workload in install.workloads:
            await kube.wait_rollout(workload.kind, workload.namespace, workload.name, timeout=WAIT)


async def test_addons_install_and_nodes_turn_ready(world: Machines) -> None:
    kube = world.kube
    await kube.wait_api_ready(timeout=60)
    assert not any(node.ready for node in await kube.list_nodes())  # no CNI yet
    config = cluster()
    await install_addons(kube, config)
    nodes = await kube.wait_nodes_ready(list(NODES), timeout=WAIT)
    assert [n.name for n in nodes] == sorted(NODES)
    by_name = {n.name: n for n in await kube.list_nodes()}
    assert by_name["demo-cp-1"].control_plane and by_name["demo-cp-1"].internal_ip == "10.0.1.1"
    assert not by_name["demo-w-1"].control_plane and by_name["demo-w-1"].schedulable
    assert by_name["demo-w-1"].provider_id == "hcloud://101"  # initialized by the CCM
    assert all(
        t.key != "node.cloudprovider.kubernetes.io/uninitialized"
        for n in by_name.values()
        for t in n.taints
    )
    secret = await kube.get("v1", "Secret", "hcloud", namespace="kube-system")
    assert secret is not None and set(secret["data"]) == {"token", "network"}
    # Re-applying the same manifests is a no-op for the Job (same name, already complete).
    again = render_addon_manifests(config, "cilium")
    await kube.apply(again.objects)
    await kube.wait_job(again.job_namespace, again.job_name, timeout=5)


def failing_at_once(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The installer Job with ``backoffLimit: 0``: the real Job controller retries a failed pod
    after 10, 20, 40 wall seconds (not scaled with the world), and what is checked here is how
    hk8s reports a failed Job, not how many times it was retried."""
    out = [json.loads(json.dumps(o)) for o in objects]
    for obj in out:
        if obj["kind"] == "Job":
            obj["spec"]["backoffLimit"] = 0
    return out


async def test_failing_helm_job_raises_with_the_pod_log(world: Machines) -> None:
    kube = world.kube
    world.faults.unknown_versions.add(("metrics-server", "9.9.9"))  # not in the repo
    config = cluster("addons: {metrics_server: {version: 9.9.9}}\n")
    await kube.apply(render_base_manifests(config, token=TOKEN, network_id=7))
    install = render_addon_manifests(config, "metrics_server")
    await kube.apply(failing_at_once(install.objects))
    with pytest.raises(JobFailedError) as info:
        await kube.wait_job(install.job_namespace, install.job_name, timeout=WAIT)
    assert 'version "9.9.9" not found' in str(info.value)
    assert TOKEN not in str(info.value)


async def test_a_failed_job_is_run_again_by_the_next_attempt(world: Machines) -> None:
    """A transient Helm failure (here: the chart repository briefly without the version) must
    not stay failed forever: the next run deletes the failed Job and runs it again."""
    kube = world.kube
    world.faults.unknown_versions.add(("metrics-server", "9.9.9"))
    config = cluster("addons: {metrics_server: {version: 9.9.9}}\n")
    await kube.apply(render_base_manifests(config, token=TOKEN, network_id=7))
    install = render_addon_manifests(config, "metrics_server")
    await kube.apply(failing_at_once(install.objects))
    with pytest.raises(JobFailedError) as info:
        await kube.wait_job(install.job_namespace, install.job_name, timeout=WAIT)
    assert "the next hk8s create runs the Job again" in (info.value.hint or "")
    world.faults.unknown_versions.clear()  # the repository is back
    assert await kube.retry_failed_job(install.job_namespace, install.job_name)
    await kube.apply(failing_at_once(install.objects))
    await kube.wait_job(install.job_namespace, install.job_name, timeout=WAIT)
    assert not await kube.retry_failed_job(install.job_namespace, install.job_name)


def web_objects(min_available: int) -> list[dict[str, Any]]:
    labels = {"app": "web"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "app"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "web", "image": "nginx:1.27"}],
                        "affinity": {
                            "podAntiAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": [
                                    {
                                        "labelSelector": {"matchLabels": labels},
                                        "topologyKey": "kubernetes.io/hostname",
                                    }
                                ]
                            }
                        },
                    },
                },
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "app"},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": labels}},
        },
    ]


async def test_cordon_drain_with_a_pdb_uncordon_then_delete_node(world: Machines) -> None:
    kube = world.kube
    # The CNI makes nodes Ready, the cloud controller lifts the uninitialized taint.
    await install_addons(kube, cluster(), ["cilium", "hcloud_ccm"])
    await kube.wait_nodes_ready(list(NODES), timeout=WAIT)
    await kube.apply(web_objects(min_available=2))
    await kube.wait_rollout("Deployment", "app", "web", timeout=WAIT)
    pods = await kube.list("v1", "Pod", namespace="app", label_selector="app=web")
    victim = next(p["spec"]["nodeName"] for p in pods if p["spec"]["nodeName"] != "demo-cp-1")

    with pytest.raises(WaitTimeoutError) as info:
        await kube.drain(victim, timeout=30)
    assert "PodDisruptionBudget app/web" in str(info.value)
    assert not {n.name: n for n in await kube.list_nodes()}[victim].schedulable  # cordoned

    await kube.apply(web_objects(min_available=1))
    evicted = await kube.drain(victim, timeout=WAIT)
    assert "app" in {ref.namespace for ref in evicted}
    left = await kube.list("v1", "Pod", field_selector=f"spec.nodeName={victim}")
    assert not [p for p in left if p["metadata"]["namespace"] == "app"]
    # DaemonSet pods stay, like kubectl drain: the cilium chart's agent and its envoy proxy.
    agents = [p for p in left if p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"]
    assert sorted(p["metadata"]["labels"].get("k8s-app") for p in agents) == [
        "cilium",
        "cilium-envoy",
    ]
    await kube.wait_rollout("Deployment", "app", "web", timeout=WAIT)  # rescheduled elsewhere

    # uncordon undoes the cordon and drops the mark named with it; other annotations stay
    mark = {"hk8s/upgrading": "v1.13.0", "team": "payments"}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": victim, "annotations": mark}}
    await kube.apply([node], field_manager="test")
    marked = {n.name: n for n in await kube.list_nodes()}[victim]
    assert not marked.schedulable and marked.annotations["hk8s/upgrading"] == "v1.13.0"
    await kube.uncordon(victim, annotation="hk8s/upgrading")
    assert {n.name: n for n in await kube.list_nodes(retry=False)}[victim].schedulable
    after = await kube.get("v1", "Node", victim)
    assert after is not None and not after["spec"].get("unschedulable")
    assert after["metadata"]["annotations"].get("team") == "payments"
    assert "hk8s/upgrading" not in after["metadata"]["annotations"]

    assert await kube.delete_node(victim) is True
    assert victim not in {n.name for n in await kube.list_nodes()}
    assert await kube.delete_node(victim) is False


async def test_destroy_helpers_remove_load_balancer_services(world: Machines) -> None:
    kube = world.kube
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ingress", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    plain = {**service, "metadata": {"name": "internal", "namespace": "default"}}
    plain["spec"] = {"type": "ClusterIP", "selector": {"app": "x"}, "ports": [{"port": 80}]}
    await kube.apply([service, plain])
    [lb] = await kube.list_load_balancer_services()
    assert (lb.namespace, lb.name) == ("default", "ingress")
    assert await kube.delete_load_balancer_services() == [lb]
    assert await kube.list_load_balancer_services() == []
    assert await kube.get("v1", "Service", "internal", namespace="default") is not None
    # Claims: whatever the API serves is listed and deleted (none exist here).
    assert await kube.delete_pvcs() == await kube.list_pvcs() == []


async def test_client_key_material_never_touches_disk(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubernetes client writes inline client-key-data to $TMPDIR and removes it only at
    exit; a SIGKILL left the admin key behind. hk8s hands it over in memory instead."""
    import os
    import tempfile

    async with machines({}) as world:
        # Only now: the control plane keeps its own files in a temporary folder.
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        kube = KubeClient.from_kubeconfig_text(
            world.kubeconfig, clock=ScaledClock(SPEED), timing=Timing()
        )
        assert await kube.list("v1", "Namespace")  # a real mTLS request with the client cert
        key_file = kube._api.configuration.key_file
        assert key_file.startswith("/proc/self/fd/")
        assert list(tmp_path.iterdir()) == []
        await kube.close()
        assert not os.path.exists(key_file)
        monkeypatch.undo()
