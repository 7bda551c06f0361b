"""A bare cloud around the real control plane: the simulated Hetzner API, servers for the
nodes, the cluster's ``hcloud`` Secret, and the simulated CCM, CSI and metrics running.

Everything runs on the ``ThreadedSim``'s event loop; tests reach it through ``Cloud.kube``
(a coroutine on the loop with the machines' client), ``Cloud.hcloud`` (hcloud-python) and
``Cloud.kubectl`` (the real kubectl, admin kubeconfig). The nodes are registered as a kubelet
registers them, with the providerID the CCM's node controller sets; ``Cloud`` renews their
Leases while it runs (the kubelet's heartbeat), and ``run_pod`` reports a pod Running and
Ready as its kubelet would. Everything judged is the real API server's and controllers'.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hcloud import Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.networks import NetworkSubnet
from hcloud.server_types import ServerType

from hk8s.pki import generate_secrets, issue_certificate
from hk8s.sim.hcloud import run_in_thread
from hk8s.sim.k8s import (
    ClusterNetwork,
    ClusterSecrets,
    ControlPlane,
    CsiDriver,
    KubeClient,
    LoadBalancerController,
    MetricsServer,
    find_binaries,
    kubeconfig,
)
from kubectl_support import Kubectl

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from hk8s.sim.hcloud import ThreadedSim

T = TypeVar("T")
HOST = "127.252.0.10"
NODES = ("k8s-w-1", "k8s-w-2")
LOCATION = "fsn1"
# The metrics-server "pod": its address in the pod CIDR, routed to the loopback port it serves.
METRICS_POD_IP = "10.244.255.10"
METRICS_PORT = 10250
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Cloud:
    threaded: ThreadedSim
    plane: ControlPlane
    api: KubeClient
    hcloud: Client
    kubectl: Kubectl
    kubeconfig: Path
    network_id: int
    servers: dict[str, int] = field(default_factory=dict)  # node name -> server id
    ccm: LoadBalancerController | None = None
    csi: CsiDriver | None = None
    metrics: MetricsServer | None = None

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        async def wrapped() -> T:
            return await coro

        return self.threaded.run(wrapped(), timeout)

    def kube(self, fn: Callable[[KubeClient], Awaitable[T]], timeout: float = 60.0) -> T:
        return self.run(fn(self.api), timeout)

    def namespace(self) -> str:
        name = unique("t")
        self.kube(lambda api: api.create("/api/v1/namespaces", {"metadata": {"name": name}}))
        self.kube(lambda api: _wait_default_account(api, name))
        return name

    def wait_for(
        self, path: str, check: Callable[[dict[str, Any] | None], bool], timeout: float = 60.0
    ) -> dict[str, Any] | None:
        """Poll ``path`` until ``check(object or None)`` holds; the last object seen."""

        async def poll(api: KubeClient) -> dict[str, Any] | None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                obj = await api.get_or_none(path)
                if check(obj):
                    return obj
                if loop.time() > deadline:
                    raise AssertionError(f"{path} never satisfied the check; last: {obj}")
                await asyncio.sleep(0.2)

        return self.kube(poll, timeout + 10)

    def until(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        """Poll a blocking ``check`` (hcloud-python calls) off the world's loop until it holds."""

        async def poll() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not await asyncio.to_thread(check):
                if loop.time() > deadline:
                    raise AssertionError(f"never: {what}")
                await asyncio.sleep(0.2)

        self.run(poll(), timeout + 10)

    @contextlib.contextmanager
    def kubelets(self) -> Iterator[None]:
        """Play every node's kubelet while the block runs (``play_kubelets``)."""
        task = self.threaded.call(lambda: asyncio.ensure_future(play_kubelets(self.api)))
        try:
            yield
        finally:
            self.threaded.call(task.cancel)

    def run_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """Wait for the scheduler to bind the pod, then report it Running and Ready as the
        node's kubelet would (no kubelet runs here)."""
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        pod = self.wait_for(path, lambda p: bool(p and p["spec"].get("nodeName")))
        assert pod is not None
        self.kube(lambda api: report_running(api, pod))
        return pod


FAIL_LABEL = "contract.hk8s.dev/exit"  # a Job pod's exit code, for the stand-in kubelets


async def play_kubelets(api: KubeClient) -> None:
    """What kubelets do for the pods bound to their nodes, as far as the tests need it: start
    them (Running and Ready), run Job pods to their end (exit code 0, or ``FAIL_LABEL``'s),
    and finish a graceful deletion once the containers stopped (delete with grace 0)."""
    while True:
        for pod in (await api.get("/api/v1/pods")).get("items") or []:
            meta, status = pod["metadata"], pod.get("status") or {}
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            if not pod["spec"].get("nodeName"):
                continue
            if meta.get("deletionTimestamp"):
                await api.delete(path, gracePeriodSeconds="0")
            elif status.get("phase") == "Pending":
                labels = meta.get("labels") or {}
                if "batch.kubernetes.io/job-name" in labels:
                    await report_finished(api, pod, int(labels.get(FAIL_LABEL, "0")))
                else:
                    await report_running(api, pod)
        await asyncio.sleep(0.2)


async def report_finished(api: KubeClient, pod: dict[str, Any], code: int) -> None:
    meta, now = pod["metadata"], stamp().split(".")[0] + "Z"
    terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                  "startedAt": now, "finishedAt": now}  # fmt: skip
    status = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": now,
                "reason": "PodCompleted",
            }
        ],
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
            for c in pod["spec"]["containers"]
        ],
        "startTime": now,
    }
    await api.patch(
        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
        {"status": status},
        kind="strategic",
    )


async def report_running(api: KubeClient, pod: dict[str, Any]) -> None:
    """A kubelet's status update for a started pod (test-side stand-in for a kubelet)."""
    meta = pod["metadata"]
    now = stamp().split(".")[0] + "Z"
    ready = [
        {"type": t, "status": "True", "lastTransitionTime": now}
        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
    ]
    containers = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }
        for c in pod["spec"]["containers"]
    ]
    status = {
        "phase": "Running",
        "conditions": ready,
        "containerStatuses": containers,
        "hostIP": "10.0.1.1",
        "podIP": f"10.244.0.{len(meta['name']) % 250 + 2}",
        "startTime": now,
    }
    await api.patch(
        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
        {"status": status},
        kind="strategic",
    )


async def _wait_default_account(api: KubeClient, namespace: str) -> None:
    for _ in range(300):
        if await api.get_or_none(f"/api/v1/namespaces/{namespace}/serviceaccounts/default"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"namespace {namespace} never got its default ServiceAccount")


async def register_node(api: KubeClient, name: str, server_id: int, public_ip: str) -> None:
    """What a kubelet and the CCM's node controller make of a node (issue 15's kubelets do
    this in the world)."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "cx23",
        "topology.kubernetes.io/region": LOCATION,
        "topology.kubernetes.io/zone": f"{LOCATION}-dc14",
    }
    await api.create(
        "/api/v1/nodes",
        {
            "metadata": {
                "name": name,
                "labels": labels,
                # kubelet --enable-controller-attach-detach (the default): the attach/detach
                # controller attaches this node's volumes.
                "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            },
            "spec": {"providerID": f"hcloud://{server_id}"},
        },
    )
    resources = {"cpu": "2", "memory": "3880Mi", "pods": "110", "ephemeral-storage": "40Gi"}
    now = stamp().split(".")[0] + "Z"
    await api.patch(
        f"/api/v1/nodes/{name}/status",
        {
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "addresses": [
                    {"type": "InternalIP", "address": f"10.0.1.{server_id % 250 + 1}"},
                    {"type": "ExternalIP", "address": public_ip},
                    {"type": "Hostname", "address": name},
                ],
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.36.3",
                    "osImage": "Talos (v1.13.0)",
                    "containerRuntimeVersion": "containerd://2.1.4",
                    "kernelVersion": "6.12.40-talos",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kubeProxyVersion": "",
                    "osImageVersion": "",
                },
            }
        },
        kind="strategic",
    )
    await api.create(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        {
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp()},
        },
    )


async def heartbeats(api: KubeClient, names: tuple[str, ...]) -> None:
    """Renew the nodes' Leases every 10 s, as kubelets do, so the node lifecycle controller
    keeps them Ready."""
    while True:
        await asyncio.sleep(10)
        for name in names:
            await api.patch(
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}",
                {"spec": {"renewTime": stamp()}},
            )


async def publish_metrics_endpoint(api: KubeClient) -> None:
    """The endpoint the metrics-server pod's Service would get (no pod runs here): a slice
    the endpointslice controller leaves alone (another manager)."""
    await api.create(
        "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices",
        {
            "metadata": {
                "name": "metrics-server-sim",
                "labels": {
                    "kubernetes.io/service-name": "metrics-server",
                    "endpointslice.kubernetes.io/managed-by": "hk8s-sim",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [METRICS_POD_IP], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": METRICS_PORT, "protocol": "TCP"}],
        },
    )


def _admin_kubeconfig(plane: ControlPlane, folder: Path) -> Path:
    ca = plane.secrets.kubernetes_ca
    admin = issue_certificate(
        ca,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        validity=dt.timedelta(hours=4),
        common_name="admin",
        organizations=["system:masters"],
        client_auth=True,
    )
    path = folder / "kubeconfig"
    path.write_text(kubeconfig(plane.url, ca.cert_pem, admin))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    folder = tmp_path_factory.mktemp("cloud")
    bundle = generate_secrets()
    secrets = ClusterSecrets(
        bundle.k8s_ca,
        bundle.k8s_aggregator_ca,
        bundle.service_account_key_pem,
        issuer=f"https://{HOST}:6443",
    )
    with run_in_thread(speed=200) as threaded:
        sim = threaded.sim
        hcloud = Client(token=sim.token, api_endpoint=sim.endpoint, poll_interval=0.05)
        hnet = hcloud.networks.create(
            name="k8s",
            ip_range="10.0.0.0/16",
            subnets=[
                NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")
            ],
            labels={"cluster": "k8s", "managed-by": "hk8s"},
        )
        network = ClusterNetwork(folder / "egress.sock")
        threaded.run(network.start())
        egress = network.write_config(folder / "egress.yaml")
        plane = ControlPlane(find_binaries(), secrets, host=HOST, egress_selector=egress)
        threaded.run(plane.start(), timeout=120)
        api = threaded.call(plane.client)
        beating = None
        try:
            cloud = Cloud(
                threaded,
                plane,
                api,
                hcloud,
                Kubectl(_admin_kubeconfig(plane, folder)),
                folder / "kubeconfig",
                int(hnet.id or 0),
            )
            for name in NODES:
                created = hcloud.servers.create(
                    name=name,
                    server_type=ServerType(name="cx23"),
                    image=Image(name="ubuntu-24.04"),
                    location=Location(name=LOCATION),
                    networks=[hnet],
                    labels={"cluster": "k8s", "managed-by": "hk8s", "role": "worker"},
                )
                created.action.wait_until_finished()
                server = hcloud.servers.get_by_id(created.server.id)
                cloud.servers[name] = int(server.id or 0)
                ip = (
                    server.public_net.ipv4.ip
                    if server.public_net and server.public_net.ipv4
                    else ""
                )
                cloud.kube(
                    lambda api, n=name, s=cloud.servers[name], i=ip: register_node(api, n, s, i)
                )
            cloud.kube(
                lambda api: api.create(
                    "/api/v1/namespaces/kube-system/secrets",
                    {
                        "metadata": {"name": "hcloud"},
                        "stringData": {"token": sim.token, "network": str(hnet.id)},
                    },
                )
            )
            beating = threaded.call(lambda: sim.add_task(heartbeats(api, NODES)))
            cloud.ccm, cloud.csi, cloud.metrics = threaded.call(
                lambda: (
                    LoadBalancerController(plane.client(), sim.endpoint, poll_interval=0.05),
                    CsiDriver(plane.client(), sim.endpoint, poll_interval=0.05),
                    MetricsServer(plane.client(), plane.secrets.aggregator_ca.cert_pem),
                )
            )
            cloud.run(cloud.csi.install())  # the csi-driver chart's CSIDriver and StorageClass
            for part in (cloud.ccm, cloud.csi, cloud.metrics):
                threaded.call(lambda p=part: sim.add_task(p.run()))
            cloud.run(cloud.csi.started())
            cloud.run(cloud.metrics.started())
            cloud.run(cloud.metrics.register())
            network.route(METRICS_POD_IP, METRICS_PORT, ("127.0.0.1", cloud.metrics.port))
            cloud.kube(publish_metrics_endpoint)
            yield cloud
        finally:
            if beating is not None:
                threaded.call(beating.cancel)
            for part in (cloud.ccm, cloud.csi, cloud.metrics):
                if part is not None:
                    threaded.run(part.stop())
            threaded.run(api.close())
            threaded.run(plane.stop(), timeout=60)
            threaded.run(network.stop())
