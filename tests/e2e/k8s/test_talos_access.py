"""Talos' part of a cluster with ``kubernetesTalosAPIAccess``, against the real API server: the
``serviceaccounts.talos.dev`` CRD appears only with the feature, accounts get a talosconfig
Secret only where the machine config allows (upstream's failure reasons otherwise) and the
real garbage collector removes it with its account; a Job pod of an image the world plays as a
program runs it with the environment and Secret files kubelet gives a container, its exit code
failing the Job and its output served as the container log.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from hk8s.pki import KeyAlgorithm, create_ca
from hk8s.sim.k8s import ApiError
from hk8s.sim.machines import PodRun, TalosAccess

from ._machines import machines

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hk8s.sim.k8s import KubeClient

    from ._machines import Machines

pytestmark = pytest.mark.e2e

OS_CA = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos",
                  now=dt.datetime.now(dt.UTC))  # fmt: skip
ACCESS = TalosAccess(("os:etcd:backup",), ("kube-system",), OS_CA.cert_pem, OS_CA.key_pem)
CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/serviceaccounts.talos.dev"


async def eventually(world: Machines, check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """``await check()`` until it returns something truthy; polls every 10 clock seconds
    (0.1 wall), for at most 60 wall seconds (the real controllers work in wall time)."""
    clock = world.machines.kubelets.clock
    for _ in range(600):
        try:
            found = await check()
        except ApiError:
            found = None
        if found:
            return found
        await clock.sleep(10)
    raise AssertionError(f"timed out waiting for {what}")


def account(name: str, namespace: str, roles: list[str] | None) -> dict[str, Any]:
    return {
        "apiVersion": "talos.dev/v1alpha1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {} if roles is None else {"roles": roles},
    }


async def reason(api: KubeClient, ns: str, name: str) -> str | None:
    path = f"/apis/talos.dev/v1alpha1/namespaces/{ns}/serviceaccounts/{name}"
    found = await api.get(path)
    return (found.get("status") or {}).get("failureReason")


async def test_talos_service_accounts_get_a_talosconfig_only_where_allowed() -> None:
    grant: list[TalosAccess | None] = [None]
    async with machines({"demo-cp-1": "control-plane"}, talos_access=lambda: grant[0]) as world:
        api = world.machines.api
        await world.machines.kubelets.clock.sleep(200)  # two wall seconds: passes ran
        assert await api.get_or_none(CRD) is None  # the feature is off: no CRD
        grant[0] = ACCESS
        await eventually(world, lambda: api.get_or_none(CRD), "the CRD")
        await api.create("/api/v1/namespaces/kube-system/secrets",
                         {"metadata": {"name": "taken"}, "data": {"x": "eA=="}})  # fmt: skip
        for name, ns, roles in (("backup", "kube-system", ["os:etcd:backup"]),
                                ("admin", "kube-system", ["os:admin"]),
                                ("noroles", "kube-system", None),
                                ("taken", "kube-system", ["os:etcd:backup"]),
                                ("elsewhere", "default", ["os:etcd:backup"])):  # fmt: skip
            path = f"/apis/talos.dev/v1alpha1/namespaces/{ns}/serviceaccounts"
            obj = account(name, ns, roles)  # created once the CRD is established
            await eventually(world, functools.partial(api.create, path, obj), f"account {name}")
        secret = await eventually(
            world, lambda: api.get_or_none("/api/v1/namespaces/kube-system/secrets/backup"),
            "the backup account's Secret",
        )  # fmt: skip
        config = yaml.safe_load(base64.b64decode(secret["data"]["config"]))
        assert config["context"] == "default"
        assert config["contexts"]["default"]["endpoints"] == ["talos.default"]
        crt = base64.b64decode(config["contexts"]["default"]["crt"])
        cert = x509.load_pem_x509_certificate(crt)
        orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        assert orgs == ["os:etcd:backup"]
        # Short-lived, as upstream's certTTL: a leaked Secret is worth 6 hours.
        assert cert.not_valid_after_utc <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
        assert base64.b64decode(config["contexts"]["default"]["ca"]) == OS_CA.cert_pem
        [owner] = secret["metadata"]["ownerReferences"]
        assert owner["kind"] == "ServiceAccount" and owner["controller"] is True

        expected = {
            ("kube-system", "admin"): "Roles not allowed: [os:admin]",
            ("kube-system", "noroles"): "Roles not found",
            ("kube-system", "taken"): "Secret already exists and is not managed by "
            "controller: kube-system/taken",
            ("default", "elsewhere"): "Namespace is not allowed: default",
        }
        for (ns, name), message in expected.items():
            assert await eventually(
                world, functools.partial(reason, api, ns, name), f"{name}'s reason"
            ) == message  # fmt: skip
        assert await api.get_or_none("/api/v1/namespaces/kube-system/secrets/admin") is None
        assert await reason(api, "kube-system", "backup") is None

        # The real garbage collector deletes the Secret with its account.
        await api.delete("/apis/talos.dev/v1alpha1/namespaces/kube-system/serviceaccounts/backup")
        await eventually(
            world,
            lambda: _gone(api, "/api/v1/namespaces/kube-system/secrets/backup"),
            "the Secret's garbage collection",
        )


async def _gone(api: KubeClient, path: str) -> bool:
    return await api.get_or_none(path) is None


async def test_a_programs_image_runs_with_the_containers_environment_and_files() -> None:
    runs: list[PodRun] = []

    async def program(run: PodRun) -> tuple[int, str]:
        runs.append(run)
        return 3, "it failed\n"

    async with machines({"demo-cp-1": "control-plane"},
                        programs={"example.com/tool": program}) as world:  # fmt: skip
        api = world.machines.api
        await api.create("/api/v1/namespaces/default/secrets", {
            "metadata": {"name": "creds"},
            "data": {"KEY": base64.b64encode(b"s3cr3t").decode(),
                     "config": base64.b64encode(b"talosconfig").decode()},
        })  # fmt: skip
        container = {
            "name": "main",
            "image": "example.com/tool:v1@sha256:" + "0" * 64,
            "env": [{"name": "GREETING", "value": "hi"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                     "key": "KEY"}}}],
            "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "C_"}],
            "volumeMounts": [{"name": "s", "mountPath": "/var/run/secrets/x"}],
        }  # fmt: skip
        job = {
            "metadata": {"name": "tool"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "hostNetwork": True,
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [container],
                        "volumes": [{"name": "s", "secret": {"secretName": "creds"}}],
                    }
                },
            },
        }
        await api.create("/apis/batch/v1/namespaces/default/jobs", job)

        async def failed() -> Any:
            found = await api.get("/apis/batch/v1/namespaces/default/jobs/tool")
            return (found.get("status") or {}).get("failed")

        assert await eventually(world, failed, "the Job's failure") == 1
        [run] = runs
        assert run.namespace == "default" and run.node == "demo-cp-1"
        assert run.env == {"GREETING": "hi", "TOKEN": "s3cr3t", "C_KEY": "s3cr3t",
                           "C_config": "talosconfig"}  # fmt: skip
        assert run.files == {"/var/run/secrets/x/KEY": b"s3cr3t",
                             "/var/run/secrets/x/config": b"talosconfig"}  # fmt: skip
        [pod] = (await api.get("/api/v1/namespaces/default/pods", labelSelector="job-name=tool"))[
            "items"
        ]
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 3 and pod["status"]["phase"] == "Failed"
        # kubectl logs: the API server proxies to the node's kubelet API.
        log = await api.text(f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}/log")
        assert log == "it failed\n"
