"""CronJobs on the simulated clock (created with the official client), Talos' ServiceAccount
controller, and Job containers played by a program (talos-backup's image)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes.client import ApiClient, BatchV1Api

from hk8s.pki import KeyAlgorithm, create_ca
from hk8s.sim.kube import PodRun, TalosAccess

if TYPE_CHECKING:
    from hk8s.sim.kube import KubeAPI

OS_CA = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos",
                  now=dt.datetime.now(dt.UTC))  # fmt: skip
ACCESS = TalosAccess(("os:etcd:backup",), ("kube-system",), OS_CA.cert_pem, OS_CA.key_pem)


def _cronjob(name: str, schedule: str, image: str = "busybox:1.36") -> Any:
    template = {
        "spec": {
            "restartPolicy": "Never",
            "hostNetwork": True,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "main", "image": image,
                            "env": [{"name": "GREETING", "value": "hi"}]}],
        }
    }  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 2,
            "jobTemplate": {"spec": {"backoffLimit": 0, "template": template}},
        },
    }


def _jobs(kube: KubeAPI, namespace: str = "default") -> list[dict[str, Any]]:
    return kube.store.list(kube.cluster.rt("batch/v1", "Job"), namespace)


async def test_a_cronjob_runs_on_schedule_and_keeps_its_history(
    kube: KubeAPI, api_client: ApiClient, eventually: Any, cluster_nodes: list[str]
) -> None:
    batch = BatchV1Api(api_client)
    await asyncio.to_thread(
        batch.create_namespaced_cron_job, "default", _cronjob("tick", "*/5 * * * *")
    )
    seen: set[str] = set()

    def three_runs() -> bool:
        jobs = _jobs(kube)
        seen.update(j["metadata"]["name"] for j in jobs)
        return len(seen) >= 3 and all(_done(j) for j in jobs)

    await eventually(three_runs, "three runs")
    jobs = _jobs(kube)
    assert len(jobs) == 2  # successfulJobsHistoryLimit: the oldest went
    for job in jobs:
        stamp = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
        when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert when.minute % 5 == 0 and when.second == 0
        assert job["metadata"]["name"] == f"tick-{int(when.timestamp()) // 60}"
        assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    cronjob = await asyncio.to_thread(batch.read_namespaced_cron_job, "tick", "default")
    assert cronjob.status is not None and cronjob.status.last_schedule_time is not None


def _done(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Complete" and c["status"] == "True" for c in conditions)


def _account(name: str, namespace: str, roles: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "talos.dev/v1alpha1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"roles": roles},
    }


async def test_talos_service_accounts_get_a_talosconfig_only_where_allowed(
    kube: KubeAPI, eventually: Any
) -> None:
    rt = kube.cluster.rt("talos.dev/v1alpha1", "ServiceAccount")
    secrets = kube.cluster.rt("v1", "Secret")
    for name, ns, roles in (("backup", "kube-system", ["os:etcd:backup"]),
                            ("admin", "kube-system", ["os:admin"]),
                            ("elsewhere", "default", ["os:etcd:backup"])):  # fmt: skip
        kube.verbs.create(rt, ns, _account(name, ns, roles), manager="test")
    await kube.clock.sleep(5)
    assert kube.store.get(secrets, "kube-system", "backup") is None  # the feature is off
    kube.cluster.talos_access = lambda: ACCESS
    secret = await eventually(lambda: kube.store.get(secrets, "kube-system", "backup"), "Secret")
    config = yaml.safe_load(base64.b64decode(secret["data"]["config"]))
    assert config["context"] == "default"
    assert config["contexts"]["default"]["endpoints"] == ["talos.default"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(config["contexts"]["default"]["crt"]))
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["os:etcd:backup"]
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "ServiceAccount"
    reasons = {
        name: (kube.store.get(rt, ns, name) or {}).get("status", {}).get("failureReason")
        for name, ns in (("admin", "kube-system"), ("elsewhere", "default"))
    }
    assert reasons == {"admin": "Roles not allowed: [os:admin]",
                       "elsewhere": "Namespace is not allowed: default"}  # fmt: skip
    assert kube.store.get(secrets, "kube-system", "admin") is None
    kube.verbs.delete(rt, "kube-system", "backup")
    await eventually(lambda: kube.store.get(secrets, "kube-system", "backup") is None, "GC")


async def test_a_programs_image_runs_the_program_with_the_pods_environment(
    kube: KubeAPI, api_client: ApiClient, eventually: Any, cluster_nodes: list[str]
) -> None:
    runs: list[PodRun] = []

    async def program(run: PodRun) -> tuple[int, str]:
        runs.append(run)
        return 3, "it failed\n"

    kube.cluster.programs["example.com/tool"] = program
    batch = BatchV1Api(api_client)
    body = _cronjob("tool", "* * * * *", image="example.com/tool:v1@sha256:" + "0" * 64)
    await asyncio.to_thread(batch.create_namespaced_cron_job, "default", body)
    failed = await eventually(
        lambda: [j for j in _jobs(kube) if (j.get("status") or {}).get("failed")], "a failed run"
    )
    assert runs[0].env == {"GREETING": "hi"} and runs[0].namespace == "default"
    assert failed[0]["status"]["failed"] == 1


async def test_an_invalid_schedule_is_refused_by_the_api(
    kube: KubeAPI, api_client: ApiClient
) -> None:
    from kubernetes.client.exceptions import ApiException

    batch = BatchV1Api(api_client)
    try:
        await asyncio.to_thread(
            batch.create_namespaced_cron_job, "default", _cronjob("bad", "61 * * * *")
        )
    except ApiException as exc:
        assert exc.status == 422 and "spec.schedule" in str(exc.body)
    else:
        raise AssertionError("an invalid schedule was accepted")
