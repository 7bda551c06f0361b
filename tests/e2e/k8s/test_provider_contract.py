"""hk8s' Kubernetes provider against the real control plane: what create, upgrade, scaling
and destroy rely on is what kube-apiserver and kube-controller-manager actually do.

The provider (``hk8s.providers.k8s.KubeClient``) runs in the test's own event loop, through
the admin kubeconfig, exactly as the CLI builds it. Pods need kubelets to run: while a test
needs that, ``cloud.kubelets()`` plays them (start pods, end Job pods, finish graceful
deletions); every decision under test (rollout and Job status, disruption budgets,
evictions, taints, binding, garbage collection) is the real controllers' and server's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from hk8s.controller import clean_in_cluster
from hk8s.errors import WaitTimeoutError
from hk8s.model.clock import SystemClock
from hk8s.model.timing import Timing
from hk8s.providers.k8s import NOT_READY_TAINTS, JobFailedError, KubeClient
from hk8s.providers.k8s._client import MERGE_PATCH as MERGE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from conftest import Cloud

pytestmark = pytest.mark.e2e

T = TypeVar("T")
PAUSE = "registry.k8s.io/pause:3.10"
TIMING = Timing(cluster_timeout=60.0, cluster_poll_interval=0.2, request_timeout=10.0)


def provider(cloud: Cloud, fn: Callable[[KubeClient], Awaitable[T]]) -> T:
    async def main() -> T:
        kube = KubeClient.from_kubeconfig(cloud.kubeconfig, clock=SystemClock(), timing=TIMING)
        try:
            return await fn(kube)
        finally:
            await kube.close()

    return asyncio.run(main())


def deployment(ns: str, name: str, replicas: int, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": PAUSE}]},
            },
        },
    }


def test_apply_is_server_side_idempotent_and_takes_fields_back(cloud: Cloud) -> None:
    ns = cloud.namespace()
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": ns},
        "data": {"mode": "fast"},
    }
    refs = provider(cloud, lambda k: k.apply([config]))
    assert [str(r) for r in refs] == [f"ConfigMap {ns}/settings"]
    path = f"/api/v1/namespaces/{ns}/configmaps/settings"
    first = cloud.kube(lambda api: api.get(path))
    (owner,) = first["metadata"]["managedFields"]
    assert (owner["manager"], owner["operation"]) == ("hk8s", "Apply")

    provider(cloud, lambda k: k.apply([config]))  # the same again: nothing changes
    assert (
        cloud.kube(lambda api: api.get(path))["metadata"]["resourceVersion"]
        == (first["metadata"]["resourceVersion"])
    )

    # Someone else takes the field (a conflicting server-side apply must force) ...
    patch = json.dumps({**config, "data": {"mode": "slow"}})
    clash = cloud.kubectl("apply", "--server-side", "-f", "-", stdin=patch)
    assert clash.returncode == 1 and "conflict" in clash.stderr.lower()
    cloud.kubectl.ok("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=patch)
    # ... and hk8s' apply (force) takes it back, as create's re-runs rely on.
    provider(cloud, lambda k: k.apply([config]))
    after = cloud.kube(lambda api: api.get(path))
    assert after["data"] == {"mode": "fast"}
    managers = {m["manager"]: m for m in after["metadata"]["managedFields"]}
    assert "f:mode" in json.dumps(managers["hk8s"]["fieldsV1"])
    assert "f:mode" not in json.dumps(managers.get("kubectl", {}).get("fieldsV1", {}))


def test_waits_follow_the_controllers(cloud: Cloud) -> None:
    ns = cloud.namespace()
    web = deployment(ns, "web", 2, {"app": "web"})
    agent = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": PAUSE}]},
            },
        },
    }

    def job(name: str, code: int) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": {"contract.hk8s.dev/exit": str(code)}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": PAUSE}],
                    },
                },
            },
        }

    provider(cloud, lambda k: k.apply([web]))
    # No kubelet: the pods never start, and the wait says what it last saw.
    with pytest.raises(WaitTimeoutError) as info:
        provider(cloud, lambda k: k.wait_rollout("Deployment", ns, "web", timeout=2))
    assert "0/2 replicas available" in str(info.value)

    with cloud.kubelets():
        provider(cloud, lambda k: k.apply([agent, job("ok", 0), job("bad", 3)]))
        provider(cloud, lambda k: k.wait_rollout("Deployment", ns, "web"))
        provider(cloud, lambda k: k.wait_rollout("DaemonSet", ns, "agent"))
        provider(cloud, lambda k: k.wait_job(ns, "ok"))
        # No kubelet serves logs here: the real API server answers 500 for them, and the
        # failure is reported at once without them (it was retried for about 90 s).
        with pytest.raises(JobFailedError) as failed:
            provider(cloud, lambda k: k.wait_job(ns, "bad"))
        assert "backoff limit" in str(failed.value) and "logs unavailable" in str(failed.value)
        # A failed Job is deleted so that applying it again runs it anew.
        assert provider(cloud, lambda k: k.retry_failed_job(ns, "bad")) is True
    ds = cloud.kube(lambda api: api.get(f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent"))
    assert ds["status"]["numberAvailable"] == len(cloud.servers)


def test_cordon_makes_the_node_unschedulable_and_uncordon_undoes_it(cloud: Cloud) -> None:
    node = sorted(cloud.servers)[0]
    mark = "hk8s.dev/upgrading"
    cloud.kube(
        lambda api: api.patch(f"/api/v1/nodes/{node}", {"metadata": {"annotations": {mark: "1"}}})
    )
    try:
        provider(cloud, lambda k: k.cordon(node))
        # The node lifecycle controller adds the taint the scheduler honours.
        seen = cloud.wait_for(
            f"/api/v1/nodes/{node}",
            lambda n: any(
                t["key"] == "node.kubernetes.io/unschedulable"
                for t in (n or {}).get("spec", {}).get("taints", [])
            ),
        )
        assert seen is not None and seen["spec"]["unschedulable"] is True
        (listed,) = [n for n in provider(cloud, lambda k: k.list_nodes()) if n.name == node]
        assert listed.schedulable is False
    finally:
        provider(cloud, lambda k: k.uncordon(node, annotation=mark))
    after = cloud.kube(lambda api: api.get(f"/api/v1/nodes/{node}"))
    assert "unschedulable" not in after["spec"]
    assert mark not in after["metadata"].get("annotations", {})


def test_drain_honours_disruption_budgets(cloud: Cloud) -> None:
    ns = cloud.namespace()
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    }
    with cloud.kubelets():
        provider(cloud, lambda k: k.apply([deployment(ns, "web", 2, {"app": "web"}), budget]))
        provider(cloud, lambda k: k.wait_rollout("Deployment", ns, "web"))
        pdb_path = f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/web"
        cloud.wait_for(pdb_path, lambda b: (b or {}).get("status", {}).get("currentHealthy") == 2)
        pods = cloud.kube(lambda api: api.get(f"/api/v1/namespaces/{ns}/pods"))["items"]
        node = pods[0]["spec"]["nodeName"]  # drain a node that runs one of them
        try:
            # The disruption controller allows no eviction: the Eviction API answers 429.
            with pytest.raises(WaitTimeoutError) as info:
                provider(cloud, lambda k: k.drain(node, timeout=3))
            assert f"blocked by PodDisruptionBudget {ns}/web" in str(info.value)
            pods = cloud.kube(lambda api: api.get(f"/api/v1/namespaces/{ns}/pods"))["items"]
            assert len(pods) == 2 and not any(p["metadata"].get("deletionTimestamp") for p in pods)

            # One may go: the drain evicts it, and the replacement lands on the other node.
            relaxed = {**budget, "spec": {**budget["spec"], "minAvailable": 1}}
            provider(cloud, lambda k: k.apply([relaxed]))
            cloud.wait_for(
                pdb_path, lambda b: (b or {}).get("status", {}).get("disruptionsAllowed") == 1
            )
            evicted = provider(cloud, lambda k: k.drain(node))
            on_node = sum(p["spec"]["nodeName"] == node for p in pods)
            assert [r.namespace for r in evicted if r.namespace == ns] == [ns] * on_node
            provider(cloud, lambda k: k.wait_rollout("Deployment", ns, "web"))
            pods = cloud.kube(lambda api: api.get(f"/api/v1/namespaces/{ns}/pods"))["items"]
            assert {p["spec"]["nodeName"] for p in pods} == {n for n in cloud.servers if n != node}
        finally:
            provider(cloud, lambda k: k.uncordon(node))


def _taints(node: dict[str, Any] | None) -> set[str]:
    return {t["key"] for t in (node or {}).get("spec", {}).get("taints") or []}


def test_ready_after_a_reboot_waits_for_the_new_kubelet_and_the_lifted_taints(
    cloud: Cloud,
) -> None:
    # kube-controller-manager's node lifecycle controller taints a node that is not Ready and
    # lifts the taints only after it is Ready again: hk8s' waits look for the keys it sets.
    node = sorted(cloud.servers)[1]

    def post(ready: bool, boot: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        reason = "KubeletReady" if ready else "KubeletNotReady"
        condition = {"type": "Ready", "status": str(ready), "reason": reason, "message": reason,
                     "lastHeartbeatTime": now, "lastTransitionTime": now}  # fmt: skip
        body = {"status": {"conditions": [condition], "nodeInfo": {"bootID": boot}}}
        cloud.kube(lambda api: api.patch(f"/api/v1/nodes/{node}/status", body, kind="strategic"))

    try:
        post(False, "boot-1")  # the kubelet's last word before the reboot
        tainted = cloud.wait_for(
            f"/api/v1/nodes/{node}", lambda n: bool(_taints(n) & NOT_READY_TAINTS)
        )
        assert "node.kubernetes.io/not-ready" in _taints(tainted)
        post(True, "boot-2")
        (back,) = provider(
            cloud, lambda k: k.wait_nodes_ready([node], booted_since={node: "boot-1"})
        )
        assert back.in_service and back.boot_id == "boot-2"
        after = cloud.kube(lambda api: api.get(f"/api/v1/nodes/{node}"))
        assert not _taints(after) & NOT_READY_TAINTS
    finally:
        post(True, "boot-2")


def test_a_watch_from_a_list_sends_the_next_change_of_its_selection(cloud: Cloud) -> None:
    # hk8s' waits list, then keep the items up to date from a watch from the list's
    # resourceVersion: the real API server must send what the selector picks, and only that.
    node, other = sorted(cloud.servers)[:2]
    nodes = "/api/v1/nodes"
    Event = tuple[str, dict[str, Any]] | None

    async def touch(kube: KubeClient, name: str) -> None:
        label = {"metadata": {"labels": {"contract.hk8s.dev/touched": uuid.uuid4().hex}}}
        await kube.request("PATCH", f"{nodes}/{name}", body=label, content_type=MERGE)

    async def first(kube: KubeClient, version: str, query: list[tuple[str, str]]) -> Event:
        async for event in kube.watch(nodes, version, 60, query=query):
            return event
        return None

    async def scenario(kube: KubeClient) -> tuple[Event, bool, Event, Event]:
        mine = [("fieldSelector", f"metadata.name={node}")]
        listed = await kube.request("GET", nodes, query=mine)
        version = listed.json()["metadata"]["resourceVersion"]
        watch = asyncio.create_task(first(kube, version, mine))
        everyone = asyncio.create_task(first(kube, version, []))
        await touch(kube, other)
        seen_by_all = await asyncio.wait_for(everyone, 20)
        early = watch.done()
        await touch(kube, node)
        seen = await asyncio.wait_for(watch, 20)
        # A version the server no longer serves (compacted, or older than its watch cache):
        # it answers at once, and the wait lists again; it never hangs.
        stale = await asyncio.wait_for(first(kube, "1", mine), 20)
        return seen_by_all, early, seen, stale

    seen_by_all, early, seen, stale = provider(cloud, scenario)
    assert seen_by_all is not None and seen_by_all[1]["metadata"]["name"] == other
    assert not early  # the selected watch was not woken by the other node
    assert seen is not None and seen[0] == "MODIFIED" and seen[1]["metadata"]["name"] == node
    assert stale is not None


def test_delete_node_removes_it_once(cloud: Cloud) -> None:
    name = "k8s-gone-1"
    cloud.kube(lambda api: api.create("/api/v1/nodes", {"metadata": {"name": name}}))
    assert provider(cloud, lambda k: k.delete_node(name)) is True
    assert provider(cloud, lambda k: k.delete_node(name)) is False
    assert name not in {n.name for n in provider(cloud, lambda k: k.list_nodes())}


def test_destroys_cleanup_lets_the_ccm_and_csi_remove_their_resources(cloud: Cloud) -> None:
    ns = cloud.namespace()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "shop",
            "namespace": ns,
            "annotations": {"load-balancer.hetzner.cloud/location": "fsn1"},
        },
        "spec": {"type": "LoadBalancer", "selector": {"app": "shop"}, "ports": [{"port": 443}]},
    }
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "orders", "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "containers": [{"name": "c", "image": PAUSE}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "orders"}}],
        },
    }
    with cloud.kubelets():
        provider(cloud, lambda k: k.apply([service, claim, pod]))
        svc_path = f"/api/v1/namespaces/{ns}/services/shop"
        svc = cloud.wait_for(
            svc_path, lambda s: bool((s or {}).get("status", {}).get("loadBalancer"))
        )
        pvc_path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims/orders"
        pvc = cloud.wait_for(
            pvc_path, lambda c: (c or {}).get("status", {}).get("phase") == "Bound"
        )
        assert svc is not None and pvc is not None
        # pvc-protection counts only scheduled pods: wait for the kubelet to run it.
        pod_path = f"/api/v1/namespaces/{ns}/pods/db"
        cloud.wait_for(pod_path, lambda p: (p or {}).get("status", {}).get("phase") == "Running")
        uid = svc["metadata"]["uid"]
        assert (
            len(cloud.hcloud.load_balancers.get_all(label_selector=f"hcloud-ccm/service-uid={uid}"))
            == 1
        )
        (volume,) = cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}")
        assert volume.size == 20

        # While a scheduled pod uses the claim, pvc-protection holds it: the cleanup deletes
        # that pod too (its kubelet confirms), the claim goes, the CSI driver deletes the
        # volume, and nothing is left over (it used to wait out its timeout here).
        left = provider(
            cloud,
            lambda k: clean_in_cluster(k, clock=SystemClock(), timeout=60, poll_interval=0.2),
        )
        assert left == []
        assert cloud.kube(lambda api: api.get_or_none(pod_path)) is None
        assert cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}") == []
        assert (
            cloud.hcloud.load_balancers.get_all(label_selector=f"hcloud-ccm/service-uid={uid}")
            == []
        )

        # A claim no pod uses any more: the cleanup deletes it and waits for the volume to go.
        archive = {**claim, "metadata": {"name": "archive", "namespace": ns}}
        user = {**pod, "metadata": {"name": "db2", "namespace": ns}}
        user["spec"] = {**pod["spec"], "volumes": [
            {"name": "d", "persistentVolumeClaim": {"claimName": "archive"}}]}  # fmt: skip
        provider(cloud, lambda k: k.apply([archive, user]))
        cloud.wait_for(
            f"/api/v1/namespaces/{ns}/pods/db2",
            lambda p: (p or {}).get("status", {}).get("phase") == "Running",
        )
        cloud.kubectl.ok("delete", "pod", "db2", "-n", ns, "--wait=true", timeout=60)
        (volume,) = cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}")
        assert volume.labels["pvc-name"] == "archive"
        left = provider(
            cloud,
            lambda k: clean_in_cluster(k, clock=SystemClock(), timeout=60, poll_interval=0.2),
        )
    assert left == []
    assert cloud.hcloud.volumes.get_all(label_selector=f"pvc-namespace={ns}") == []
    assert provider(cloud, lambda k: k.list_pvcs()) == []
    assert provider(cloud, lambda k: k.list_load_balancer_services()) == []
