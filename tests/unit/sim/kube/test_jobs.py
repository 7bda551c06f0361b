"""Plain Jobs: a pod that runs for a while and succeeds, TTL after finishing, the
ServiceAccount admission check, and slow helm releases."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiClient, BatchV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from hk8s.sim.kube import KubeAPI


def _job(name: str, *, ttl: int | None = None, account: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                # No CNI in these clusters yet: only host-network pods can start.
                "hostNetwork": True,
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
                **({"serviceAccountName": account} if account else {}),
            }
        }
    }
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def _finished(batch: BatchV1Api, name: str) -> Any:
    job = batch.read_namespaced_job(name, "default")
    return job if job.status.completion_time else None


async def test_job_completes_then_expires(
    kube: KubeAPI, api_client: ApiClient, eventually: Any, cluster_nodes: list[str]
) -> None:
    batch, core = BatchV1Api(api_client), CoreV1Api(api_client)
    created = await asyncio.to_thread(batch.create_namespaced_job, "default", _job("run", ttl=120))
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1
    started = kube.clock.now()
    job = await eventually(lambda: _finished(batch, "run"), "Job complete")
    # Pod start (3 s) + run (8 s) by default.
    assert kube.clock.now() - started >= 11
    assert job.status.succeeded == 1 and not job.status.active
    assert [c.type for c in job.status.conditions] == ["SuccessCriteriaMet", "Complete"]
    pods = await asyncio.to_thread(
        core.list_namespaced_pod, "default", label_selector="job-name=run"
    )
    assert [p.status.phase for p in pods.items] == ["Succeeded"]

    def gone() -> bool:
        try:
            batch.read_namespaced_job("run", "default")
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, "Job deleted by its TTL")
    pods = await eventually(
        lambda: not core.list_namespaced_pod("default", label_selector="job-name=run").items,
        "pods deleted with the Job",
    )


async def test_job_without_its_service_account_creates_no_pod(
    kube: KubeAPI, api_client: ApiClient, cluster_nodes: list[str]
) -> None:
    batch, core = BatchV1Api(api_client), CoreV1Api(api_client)
    await asyncio.to_thread(batch.create_namespaced_job, "default", _job("sa", account="helm"))
    await kube.clock.sleep(30)
    pods = await asyncio.to_thread(
        core.list_namespaced_pod, "default", label_selector="job-name=sa"
    )
    assert pods.items == []
    await asyncio.to_thread(
        core.create_namespaced_service_account, "default", {"metadata": {"name": "helm"}}
    )
    await kube.clock.sleep(30)
    pods = await asyncio.to_thread(
        core.list_namespaced_pod, "default", label_selector="job-name=sa"
    )
    assert len(pods.items) == 1


async def test_slow_release_takes_longer(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> None:
    batch = BatchV1Api(api_client)
    kube.faults.slow_releases["metrics-server"] = 300.0
    started = kube.clock.now()
    await apply(
        helm_job(
            "metrics-server",
            "metrics-server",
            "https://kubernetes-sigs.github.io/metrics-server/",
            "3.13.0",
        )
    )

    def done() -> Any:
        job = batch.read_namespaced_job("metrics-server-install", "kube-system")
        return job if job.status.succeeded else None

    await eventually(done, "slow helm Job")
    assert kube.clock.now() - started >= 300


async def test_failing_container_exhausts_the_backoff_limit(
    kube: KubeAPI, api_client: ApiClient, eventually: Any, cluster_nodes: list[str]
) -> None:
    batch, core = BatchV1Api(api_client), CoreV1Api(api_client)
    job = _job("fails")
    job["spec"]["backoffLimit"] = 1
    job["spec"]["template"]["spec"]["containers"][0]["command"] = ["sh", "-c", "exit 3"]
    await asyncio.to_thread(batch.create_namespaced_job, "default", job)

    def failed() -> Any:
        found = batch.read_namespaced_job("fails", "default")
        conditions = {c.type: c for c in found.status.conditions or []}
        return conditions.get("Failed")

    condition = await eventually(failed, "Job failed")
    assert condition.reason == "BackoffLimitExceeded"
    pods = await asyncio.to_thread(
        core.list_namespaced_pod, "default", label_selector="job-name=fails"
    )
    # backoffLimit 1: the first pod and one retry, both exited 3.
    assert len(pods.items) == 2
    codes = {p.status.container_statuses[0].state.terminated.exit_code for p in pods.items}
    assert codes == {3}


async def test_following_a_helm_job_log_ends_with_the_pod(
    kube: KubeAPI,
    api_client: ApiClient,
    apply: Any,
    helm_job: Any,
    eventually: Any,
    cluster_nodes: list[str],
) -> None:
    core = CoreV1Api(api_client)
    await apply(
        helm_job(
            "metrics-server",
            "metrics-server",
            "https://kubernetes-sigs.github.io/metrics-server/",
            "3.13.0",
        )
    )

    def running_pod() -> str | None:
        pods = core.list_namespaced_pod(
            "kube-system", label_selector="job-name=metrics-server-install"
        ).items
        return pods[0].metadata.name if pods and pods[0].status.phase == "Running" else None

    name = await eventually(running_pod, "helm pod running")
    log = await asyncio.to_thread(
        core.read_namespaced_pod_log, name, "kube-system", follow=True, _request_timeout=30
    )
    assert "STATUS: deployed" in log
    pod = await asyncio.to_thread(core.read_namespaced_pod, name, "kube-system")
    assert pod.status.phase == "Succeeded"
