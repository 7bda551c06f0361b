"""Addon Jobs that run helm, per the addon contract: charts create their workloads, nodes turn
Ready when Cilium runs, the CCM initializes nodes, and failures read like helm's."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiClient, AppsV1Api, BatchV1Api, CoreV1Api

if TYPE_CHECKING:
    from hk8s.sim.kube import KubeAPI

CILIUM_REPO = "https://helm.cilium.io/"
HETZNER_REPO = "https://charts.hetzner.cloud"
CILIUM_VALUES = "ipam:\n  mode: kubernetes\nkubeProxyReplacement: true\nk8sServiceHost: localhost\n"


def _job_state(batch: BatchV1Api, name: str) -> str | None:
    job = batch.read_namespaced_job(name, "kube-system")
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _job_log(core: CoreV1Api, job: str) -> str:
    pods = core.list_namespaced_pod("kube-system", label_selector=f"job-name={job}")
    return "".join(
        core.read_namespaced_pod_log(p.metadata.name, "kube-system", tail_lines=40)
        for p in pods.items
    )


def _taints(core: CoreV1Api, name: str) -> set[str]:
    return {t.key for t in core.read_node(name).spec.taints or []}


def _ready(core: CoreV1Api) -> dict[str, str]:
    return {
        n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready")
        for n in core.list_node().items
    }


async def _install_cilium(apply: Any, helm_job: Any, eventually: Any, batch: BatchV1Api) -> None:
    await apply(helm_job("cilium", "cilium", CILIUM_REPO, "1.18.4", CILIUM_VALUES))
    state = await eventually(lambda: _job_state(batch, "cilium-install"), "cilium Job")
    assert state == "Complete"


async def test_cilium_job_installs_cni_and_nodes_turn_ready(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> None:
    core, batch, apps = CoreV1Api(api_client), BatchV1Api(api_client), AppsV1Api(api_client)
    before = await asyncio.to_thread(_ready, core)
    assert before == dict.fromkeys(cluster_nodes, "False")
    assert "node.kubernetes.io/not-ready" in await asyncio.to_thread(_taints, core, "demo-w-1")

    await _install_cilium(apply, helm_job, eventually, batch)
    log = await asyncio.to_thread(_job_log, core, "cilium-install")
    assert 'Release "cilium" does not exist. Installing it now.' in log
    assert "STATUS: deployed" in log and "REVISION: 1" in log

    ds = await eventually(
        lambda: (
            (d := apps.read_namespaced_daemon_set("cilium", "kube-system")).status.number_ready == 3
            and d
        ),
        "cilium DaemonSet ready",
    )
    assert ds.status.desired_number_scheduled == 3
    assert ds.spec.template.spec.containers[0].image == "quay.io/cilium/cilium:v1.18.4"

    def all_ready() -> dict[str, str] | None:
        ready = _ready(core)
        return ready if set(ready.values()) == {"True"} else None

    ready = await eventually(all_ready, "nodes Ready")
    assert set(ready) == set(cluster_nodes)
    taints = await asyncio.to_thread(_taints, core, "demo-w-1")
    assert "node.kubernetes.io/not-ready" not in taints
    # No cloud controller yet: nodes keep the uninitialized taint.
    assert "node.cloudprovider.kubernetes.io/uninitialized" in taints
    operator = await eventually(
        lambda: (
            (
                d := apps.read_namespaced_deployment("cilium-operator", "kube-system")
            ).status.ready_replicas
            == 2
            and d
        ),
        "cilium-operator ready",
    )
    assert operator.status.available_replicas == 2
    # The release is recorded like helm 3 does, so a re-run upgrades it.
    secrets = await asyncio.to_thread(
        core.list_namespaced_secret, "kube-system", label_selector="owner=helm,name=cilium"
    )
    assert [s.type for s in secrets.items] == ["helm.sh/release.v1"]


async def test_ccm_waits_for_its_secret_then_initializes_nodes(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> None:
    core, batch = CoreV1Api(api_client), BatchV1Api(api_client)
    await _install_cilium(apply, helm_job, eventually, batch)
    await apply(
        helm_job(
            "hcloud-cloud-controller-manager",
            "hcloud-cloud-controller-manager",
            HETZNER_REPO,
            "1.27.0",
            "networking:\n  enabled: true\n",
        )
    )

    def ccm_waiting() -> str | None:
        pods = core.list_namespaced_pod(
            "kube-system", label_selector="app.kubernetes.io/name=hcloud-cloud-controller-manager"
        ).items
        for pod in pods:
            for status in pod.status.container_statuses or []:
                if status.state.waiting and status.state.waiting.message:
                    return f"{status.state.waiting.reason}: {status.state.waiting.message}"
        return None

    waiting = await eventually(ccm_waiting, "CCM pod blocked on its Secret")
    assert waiting == 'CreateContainerConfigError: secret "hcloud" not found'
    assert "node.cloudprovider.kubernetes.io/uninitialized" in await asyncio.to_thread(
        _taints, core, "demo-w-2"
    )
    await apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "hcloud", "namespace": "kube-system"},
                "stringData": {"token": "t" * 64, "network": "1234"},
            }
        ]
    )
    node = await eventually(
        lambda: (n := core.read_node("demo-w-2")).spec.provider_id and n, "node initialized"
    )
    assert node.spec.provider_id == "hcloud://202"
    assert "node.cloudprovider.kubernetes.io/uninitialized" not in {
        t.key for t in node.spec.taints or []
    }
    cp = await asyncio.to_thread(core.read_node, "demo-cp-1")
    assert cp.spec.provider_id == "hcloud://101"
    assert {t.key for t in cp.spec.taints} == {"node-role.kubernetes.io/control-plane"}


async def test_failing_release_and_unknown_version_fail_like_helm(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> None:
    core, batch = CoreV1Api(api_client), BatchV1Api(api_client)
    kube.faults.unknown_versions.add(("cilium", "1.99.0"))
    await apply(helm_job("cilium", "cilium", CILIUM_REPO, "1.99.0", CILIUM_VALUES))
    assert await eventually(lambda: _job_state(batch, "cilium-install"), "Job") == "Failed"
    log = await asyncio.to_thread(_job_log, core, "cilium-install")
    assert log == (
        'Error: chart "cilium" version "1.99.0" not found in https://helm.cilium.io/ repository\n'
    )
    job = await asyncio.to_thread(batch.read_namespaced_job, "cilium-install", "kube-system")
    failed = next(c for c in job.status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded" and job.status.failed == 1

    kube.faults.failing_releases["metrics-server"] = (
        "INSTALLATION FAILED: context deadline exceeded"
    )
    await apply(
        helm_job(
            "metrics-server",
            "metrics-server",
            "https://kubernetes-sigs.github.io/metrics-server/",
            "3.13.0",
        )
    )
    assert await eventually(lambda: _job_state(batch, "metrics-server-install"), "Job") == "Failed"
    log = await asyncio.to_thread(_job_log, core, "metrics-server-install")
    assert log == "Error: INSTALLATION FAILED: context deadline exceeded\n"

    await apply(helm_job("csi", "hcloud-csi", "https://example.com/charts", "2.18.0"))
    assert await eventually(lambda: _job_state(batch, "csi-install"), "Job") == "Failed"
    log = await asyncio.to_thread(_job_log, core, "csi-install")
    assert log.startswith('Error: looks like "https://example.com/charts" is not a valid chart')


async def test_upgrade_rolls_the_daemonset_to_the_new_version(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> None:
    core, batch, apps = CoreV1Api(api_client), BatchV1Api(api_client), AppsV1Api(api_client)
    await _install_cilium(apply, helm_job, eventually, batch)
    upgrade = helm_job("cilium", "cilium", CILIUM_REPO, "1.18.5", CILIUM_VALUES)
    upgrade[-1]["metadata"]["name"] = "cilium-upgrade"
    await apply(upgrade)
    assert await eventually(lambda: _job_state(batch, "cilium-upgrade"), "upgrade Job") == (
        "Complete"
    )
    log = await asyncio.to_thread(_job_log, core, "cilium-upgrade")
    assert 'Release "cilium" has been upgraded. Happy Helming!' in log and "REVISION: 2" in log

    def rolled_out() -> Any:
        ds = apps.read_namespaced_daemon_set("cilium", "kube-system")
        status = ds.status
        done = (
            status.observed_generation == ds.metadata.generation
            and status.updated_number_scheduled == status.desired_number_scheduled == 3
            and status.number_ready == 3
        )
        return ds if done else None

    ds = await eventually(rolled_out, "cilium DaemonSet rolled out")
    assert ds.spec.template.spec.containers[0].image == "quay.io/cilium/cilium:v1.18.5"
    pods = await asyncio.to_thread(
        core.list_namespaced_pod, "kube-system", label_selector="k8s-app=cilium"
    )
    images = {p.spec.containers[0].image for p in pods.items if p.status.phase == "Running"}
    assert images == {"quay.io/cilium/cilium:v1.18.5"}
    releases = await asyncio.to_thread(
        core.list_namespaced_secret, "kube-system", label_selector="owner=helm,name=cilium"
    )
    assert sorted(
        (s.metadata.labels["version"], s.metadata.labels["status"]) for s in releases.items
    ) == [("1", "superseded"), ("2", "deployed")]
