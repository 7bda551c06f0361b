"""A simulated API server per test, and the official kubernetes client pointed at it.

The sim runs on a fast ``ScaledClock``; tests wait for conditions with ``eventually`` (polls
through the same clock with a deadline), and call the blocking client in a worker thread so
the server keeps running on the test's event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from kubernetes.client import ApiClient, Configuration

from hk8s.model import ScaledClock
from hk8s.pki import (
    CertAndKey,
    KeyAlgorithm,
    create_ca,
    generate_admin_kubeconfig,
    issue_kube_admin_cert,
    to_pkcs8_pem,
)
from hk8s.sim.kube import KubeAPI, Timings

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")
SPEED = 200.0


@pytest.fixture(scope="session")
def k8s_ca() -> CertAndKey:
    # Talos' certs.k8s: ECDSA P-256, O=kubernetes.
    return create_ca(
        algorithm=KeyAlgorithm.ECDSA_P256, organization="kubernetes", now=dt.datetime.now(dt.UTC)
    )


@pytest.fixture
async def kube(k8s_ca: CertAndKey) -> AsyncIterator[KubeAPI]:
    server_ids = {"demo-cp-1": 101, "demo-w-1": 201, "demo-w-2": 202}
    api = KubeAPI(
        k8s_ca.cert_pem,
        k8s_ca.key_pem,
        ScaledClock(SPEED),
        cloud_instance=server_ids.get,
        timings=Timings(),
        seed=1,
    )
    await api.serve("127.0.0.1", 0)
    yield api
    await api.stop()


@pytest.fixture
def client_files(tmp_path: Path, k8s_ca: CertAndKey) -> dict[str, str]:
    admin = issue_kube_admin_cert(k8s_ca, now=dt.datetime.now(dt.UTC))
    files = {"ca": k8s_ca.cert_pem, "cert": admin.cert_pem, "key": to_pkcs8_pem(admin.key_pem)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in files}


@pytest.fixture
def api_client(kube: KubeAPI, client_files: dict[str, str]) -> Iterator[ApiClient]:
    """``ApiClient`` from a ``Configuration`` with client cert/key files and the CA."""
    configuration = Configuration()
    configuration.host = kube.urls[0]
    configuration.ssl_ca_cert = client_files["ca"]
    configuration.cert_file = client_files["cert"]
    configuration.key_file = client_files["key"]
    client = ApiClient(configuration)
    yield client
    client.close()


@pytest.fixture
def kubeconfig(kube: KubeAPI, k8s_ca: CertAndKey) -> dict[str, Any]:
    """The admin kubeconfig hk8s writes (hk8s.pki), as a dict."""
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(generate_admin_kubeconfig("demo", k8s_ca, kube.urls[0]))
    return loaded


Waiter = Callable[..., Awaitable[Any]]


@pytest.fixture
def eventually(kube: KubeAPI) -> Waiter:
    """``await eventually(check, what)``: poll blocking ``check`` (in a thread) through the
    sim clock until it returns something truthy, and return that."""

    async def wait(check: Callable[[], T], what: str, timeout: float = 900.0) -> T:
        deadline = kube.clock.now() + timeout
        last: Any = None
        while kube.clock.now() < deadline:
            last = await asyncio.to_thread(check)
            if last:
                return last  # type: ignore[no-any-return]
            await kube.clock.sleep(2.0)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")

    return wait


def _helm_job(
    release: str,
    chart: str,
    repo: str,
    version: str,
    values: str = "{}\n",
    *,
    namespace: str = "kube-system",
    backoff_limit: int = 0,
) -> list[dict[str, Any]]:
    """The objects hk8s' addon contract applies: ServiceAccount, values ConfigMap, helm Job."""
    labels = {"app.kubernetes.io/name": "hk8s-addon", "app.kubernetes.io/instance": release}
    job_spec = {
        "backoffLimit": backoff_limit,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "hk8s-helm",
                "hostNetwork": True,
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "node-role.kubernetes.io/control-plane",
                                            "operator": "Exists",
                                        }
                                    ]
                                }
                            ]
                        }
                    }
                },
                "tolerations": [
                    {
                        "key": "node-role.kubernetes.io/control-plane",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    },
                    {
                        "key": "node.kubernetes.io/not-ready",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    },
                    # As hk8s' addon-job.yaml: stay on a NotReady node past the default 300 s.
                    {
                        "key": "node.kubernetes.io/not-ready",
                        "operator": "Exists",
                        "effect": "NoExecute",
                    },
                    {
                        "key": "node.cloudprovider.kubernetes.io/uninitialized",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    },
                ],
                "containers": [
                    {
                        "name": "helm",
                        "image": "alpine/helm:3.19.0",
                        "command": ["helm"],
                        "args": [
                            "upgrade",
                            "--install",
                            release,
                            chart,
                            "--repo",
                            repo,
                            "--version",
                            version,
                            "--namespace",
                            namespace,
                            "--create-namespace",
                            "--values",
                            "/values/values.yaml",
                        ],
                        "volumeMounts": [
                            {"name": "values", "mountPath": "/values", "readOnly": True}
                        ],
                    }
                ],
                "volumes": [{"name": "values", "configMap": {"name": f"{release}-values"}}],
            },
        },
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "hk8s-helm", "namespace": "kube-system"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{release}-values", "namespace": "kube-system"},
            "data": {"values.yaml": values},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{release}-install", "namespace": "kube-system"},
            "spec": job_spec,
        },
    ]


Applier = Callable[[list[dict[str, Any]]], Awaitable[None]]


@pytest.fixture
def apply(api_client: ApiClient) -> Applier:
    """Server-side apply objects in order, the way hk8s does (``providers.k8s`` call_api)."""
    import json

    paths = {
        "ServiceAccount": "serviceaccounts",
        "ConfigMap": "configmaps",
        "Secret": "secrets",
        "Job": "jobs",
        "Deployment": "deployments",
        "PodDisruptionBudget": "poddisruptionbudgets",
    }

    def send(obj: dict[str, Any]) -> None:
        base = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
        meta = obj["metadata"]
        path = f"{base}/namespaces/{meta['namespace']}/{paths[obj['kind']]}/{meta['name']}"
        method, url, headers, body, _ = api_client.param_serialize(
            method="PATCH",
            resource_path=path,
            query_params=[("fieldManager", "hk8s"), ("force", "true")],
            header_params={"Content-Type": "application/apply-patch+yaml"},
            body=json.dumps(obj),
            auth_settings=["BearerToken"],
        )
        response = api_client.call_api(method, url, header_params=headers, body=body)
        assert response.status == 200, response.read()
        response.read()

    async def apply_all(objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            await asyncio.to_thread(send, obj)

    return apply_all


@pytest.fixture
def helm_job() -> Callable[..., list[dict[str, Any]]]:
    """``helm_job(release, chart, repo, version, values_yaml)`` -> objects to apply."""
    return _helm_job


@pytest.fixture
def cluster_nodes(kube: KubeAPI) -> list[str]:
    """One control plane and two workers, registered as Talos' kubelets do."""
    kube.register_node("demo-cp-1", "10.0.1.1", "127.0.0.11", role="control-plane")
    kube.register_node("demo-w-1", "10.0.1.2", "127.0.0.12")
    kube.register_node("demo-w-2", "10.0.1.3", "127.0.0.13")
    return ["demo-cp-1", "demo-w-1", "demo-w-2"]
