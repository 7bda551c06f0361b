"""The world's real control plane: started with a cluster's own PKI, it serves what
kube-apiserver serves, to the credentials a Talos cluster would accept and no others."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.pki import KeyAlgorithm, create_ca, generate_secrets, issue_certificate
from hk8s.sim.k8s import KUBERNETES_RELEASE, ClusterSecrets, ControlPlane, find_binaries
from hk8s.sim.k8s._controlplane import CONTROLLERS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hk8s.pki import CertAndKey

ROOT = Path(__file__).resolve().parents[3]
HOST = "127.251.0.10"
Plane = tuple[ControlPlane, "CertAndKey"]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the control plane's processes belong to (asyncio's subprocesses are bound
    to the loop that started them)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def plane(loop: asyncio.AbstractEventLoop) -> Iterator[Plane]:
    bundle = generate_secrets()
    secrets = ClusterSecrets(
        bundle.k8s_ca,
        bundle.k8s_aggregator_ca,
        bundle.service_account_key_pem,
        issuer=f"https://{HOST}:6443",
        secretbox=bundle.secretbox_encryption_secret,
    )
    cp = ControlPlane(find_binaries(), secrets, host=HOST)
    try:
        loop.run_until_complete(cp.start())
        yield cp, bundle.k8s_ca
    finally:
        loop.run_until_complete(cp.stop())


def _get(
    cp: ControlPlane, path: str, client: CertAndKey | None, tmp: Path
) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=cp.file("pki/ca.crt"))
    if client is not None:
        (tmp / "c.crt").write_bytes(client.cert_pem)
        (tmp / "c.key").write_bytes(client.key_pem)
        context.load_cert_chain(tmp / "c.crt", tmp / "c.key")
    try:
        with urllib.request.urlopen(cp.url + path, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _client(ca: CertAndKey, cn: str, orgs: list[str]) -> CertAndKey:
    return issue_certificate(
        ca,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        validity=dt.timedelta(hours=1),
        common_name=cn,
        organizations=orgs,
        client_auth=True,
    )


def test_the_release_is_pinned_once() -> None:
    """tools/kube/go.mod is the pin; the simulator looks for the build of the same release."""
    gomod = (ROOT / "tools" / "kube" / "go.mod").read_text()
    pin = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", gomod, re.M)
    assert pin is not None
    assert pin[1] == KUBERNETES_RELEASE


def test_serves_its_pinned_release_to_the_admin(plane: Plane, tmp_path: Path) -> None:
    cp, ca = plane
    admin = _client(ca, "admin", ["system:masters"])
    status, version = _get(cp, "/version", admin, tmp_path)
    assert (status, version["gitVersion"]) == (200, KUBERNETES_RELEASE)
    status, namespaces = _get(cp, "/api/v1/namespaces", admin, tmp_path)
    assert status == 200
    assert {"default", "kube-system"} <= {n["metadata"]["name"] for n in namespaces["items"]}


def test_rbac_is_on_and_strangers_are_refused(plane: Plane, tmp_path: Path) -> None:
    cp, ca = plane
    status, body = _get(cp, "/api/v1/secrets", _client(ca, "alice", []), tmp_path)
    assert (status, body["reason"]) == (403, "Forbidden")
    assert _get(cp, "/api/v1/namespaces", None, tmp_path)[0] == 401
    other = create_ca(
        algorithm=KeyAlgorithm.ECDSA_P256, organization="kubernetes", now=dt.datetime.now(dt.UTC)
    )
    # kube-apiserver asks for a client certificate without requiring one; one it cannot verify
    # against the cluster CA authenticates nobody.
    stranger = _client(other, "admin", ["system:masters"])
    assert _get(cp, "/api/v1/namespaces", stranger, tmp_path)[0] == 401


def test_the_machines_client_registers_a_node_and_watches_its_pods(plane: Plane) -> None:
    """The simulated kubelets' path: register a Node, see the scheduler bind a pod to it."""
    cp, _ = plane

    async def scenario() -> tuple[str, str]:
        api = cp.client()
        try:
            await api.create(
                "/api/v1/nodes",
                {
                    "metadata": {"name": "w-1", "labels": {"kubernetes.io/hostname": "w-1"}},
                    "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}},
                },
            )
            await api.patch(
                "/api/v1/nodes/w-1/status",
                {
                    "status": {
                        "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                        "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                        "conditions": [
                            {"type": "Ready", "status": "True", "reason": "KubeletReady"}
                        ],
                    }
                },
                kind="strategic",
            )
            # The controller manager creates the namespace's default ServiceAccount after start.
            accounts = await api.get("/api/v1/namespaces/default/serviceaccounts")
            if not accounts["items"]:
                async for _, account in api.watch(
                    "/api/v1/namespaces/default/serviceaccounts",
                    resource_version=accounts["metadata"]["resourceVersion"],
                    timeout=30,
                ):
                    if account["metadata"]["name"] == "default":
                        break
            listed = await api.get("/api/v1/namespaces/default/pods")
            pod = {
                "metadata": {"name": "p"},
                "spec": {
                    "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
                    "tolerations": [{"operator": "Exists"}],
                },
            }
            await api.create("/api/v1/namespaces/default/pods", pod)
            async for kind, obj in api.watch(
                "/api/v1/namespaces/default/pods",
                resource_version=listed["metadata"]["resourceVersion"],
                timeout=30,
            ):
                if obj["spec"].get("nodeName"):
                    return kind, obj["spec"]["nodeName"]
            return "", ""
        finally:
            await api.close()

    assert asyncio.run(scenario())[1] == "w-1"


def test_the_controllers_are_down_while_etcd_has_no_keyspace(
    plane: Plane, loop: asyncio.AbstractEventLoop
) -> None:
    """Between the wipe of every etcd member and ``bootstrap --recover-from`` a real control
    plane's controllers have no API server; they come back as fresh processes (a garbage
    collector that saw the owners vanish would delete their restored dependents)."""
    cp, _ = plane
    before = {name: cp._procs[name].pid for name in CONTROLLERS}
    cp.halt_controllers()
    for name in CONTROLLERS:
        loop.run_until_complete(asyncio.wait_for(cp._procs[name].wait(), 10))
    assert not any(cp.running()[name] for name in CONTROLLERS)
    assert cp.running()["kube-apiserver"] and cp.running()["etcd"]
    loop.run_until_complete(cp.resume_controllers())
    assert all(cp.running()[name] for name in CONTROLLERS)
    assert all(cp._procs[name].pid != before[name] for name in CONTROLLERS)
