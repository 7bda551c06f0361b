"""Stateful fakes of the Talos and Kubernetes ports for rolling-upgrade tests.

``FakeTalos`` models what an upgrade looks like from outside: after ``Upgrade`` a node keeps
answering at its old release for a while, stops answering (reboot), then answers at the new
release, or at the old one again when its upgrade is set to fail. ``FakeKube`` records
cordons, drains and uncordons. Both log every mutating call in one shared ``log`` so a test
can assert on the order across them, and track how many nodes are down at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pytest

from hk8s.controller import UPGRADING_ANNOTATION, Node, NodeUpgrader, Waiter
from hk8s.controller._servers import DesiredServer
from hk8s.errors import TransientAPIError, UnavailableError
from hk8s.model import ManualClock, Timing
from hk8s.model.resources import Server
from hk8s.providers.k8s import KubeNode, ObjectRef
from hk8s.providers.talos import (
    ApplyMode,
    ApplyResult,
    EtcdMember,
    ServiceStatus,
    VersionInfo,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DOWN_POLLS = 2  # Version calls a rebooting node does not answer
BUSY_POLLS = 1  # Version calls it still answers at the old release before going down


@dataclass
class FakeNode:
    name: str
    address: str
    control_plane: bool
    version: str = "v1.12.0"
    kubelet: str = "1.35.0"
    target: str | None = None
    busy: int = 0
    down: int = 0
    fails: bool = False
    boots: int = 1  # the kubelet's bootID changes with every boot
    platform: str = "hcloud"
    installing: str = "hcloud"  # the platform of the installer the running upgrade uses


@dataclass
class Cluster:
    nodes: dict[str, FakeNode]
    log: list[str] = field(default_factory=list)
    max_down: int = 0
    down_polls: int = DOWN_POLLS  # 0: polls never catch a node while it reboots
    flaky_polls: int = 0  # Version calls that time out while the node is still installing
    # Upgrade calls that time out: before Talos started the upgrade, or after (reply lost).
    upgrade_timeouts: int = 0
    lost_replies: int = 0
    preserve: list[bool] = field(default_factory=list)  # what each Upgrade call asked
    unstarted_polls: int = 0  # EtcdMemberList calls that show a member not started

    def by_address(self, address: str) -> FakeNode:
        return next(n for n in self.nodes.values() if n.address == address)

    def down_now(self) -> int:
        return sum(1 for n in self.nodes.values() if n.target is not None)


class FakeTalos:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def version(self, node: str, *, maintenance: bool = False) -> VersionInfo:
        fake = self.cluster.by_address(node)
        if fake.target is not None:
            if self.cluster.flaky_polls:
                self.cluster.flaky_polls -= 1
                raise TransientAPIError(f"version of {fake.name}: deadline exceeded")
            if fake.busy:
                fake.busy -= 1
                return VersionInfo(tag=fake.version)
            if fake.down:
                fake.down -= 1
                raise UnavailableError(f"{fake.name} is rebooting")
            if not fake.fails:
                fake.version, fake.platform = fake.target, fake.installing
            fake.target = None
            fake.boots += 1
        return VersionInfo(tag=fake.version, platform=fake.platform)

    async def upgrade(
        self, node: str, image: str, *, preserve: bool = False, stage: bool = False
    ) -> None:
        fake = self.cluster.by_address(node)
        self.cluster.log.append(f"upgrade {fake.name}")
        self.cluster.preserve.append(preserve)
        if self.cluster.upgrade_timeouts:  # still pulling the installer when the call ends
            self.cluster.upgrade_timeouts -= 1
            raise TransientAPIError(f"Talos Upgrade on {node}: timed out")
        lost = self.cluster.lost_replies > 0
        self.cluster.lost_replies -= lost
        fake.target = image.rpartition(":")[2]
        # Image Factory: <platform>-installer/<schematic>; the bare installer/ is metal's.
        fake.installing = "hcloud" if "/hcloud-installer/" in image else "metal"
        fake.busy, fake.down = BUSY_POLLS, self.cluster.down_polls
        self.cluster.max_down = max(self.cluster.max_down, self.cluster.down_now())
        if lost:  # Talos took it and went down for its reboot; the answer never came back
            fake.busy = 0
            raise TransientAPIError(f"Talos Upgrade on {node}: timed out")

    async def apply_config(
        self,
        node: str,
        data: bytes,
        mode: ApplyMode,
        *,
        maintenance: bool = False,
        dry_run: bool = False,
    ) -> ApplyResult:
        fake = self.cluster.by_address(node)
        self.cluster.log.append(f"apply {fake.name} {mode.value}")
        for line in data.decode().splitlines():
            if line.startswith("kubernetes:"):
                fake.kubelet = line.split(":", 1)[1].strip()
        return ApplyResult(mode=ApplyMode.NO_REBOOT)

    async def etcd_members(self, node: str) -> list[EtcdMember]:
        cps = [n for n in self.cluster.nodes.values() if n.control_plane]
        started = self.cluster.unstarted_polls <= 0
        self.cluster.unstarted_polls -= 1
        if not started:
            self.cluster.log.append("etcd member not started")
        return [
            EtcdMember(
                id=i,
                hostname=n.name if started or i > 1 else "",
                client_urls=(f"https://{n.address}:2379",) if started or i > 1 else (),
            )
            for i, n in enumerate(cps, 1)
        ]

    async def services(self, node: str) -> list[ServiceStatus]:
        fake = self.cluster.by_address(node)
        names = ("apid", "etcd", "kubelet", "trustd") if fake.control_plane else ("apid", "kubelet")
        return [ServiceStatus(id=n, state="Running", healthy=True) for n in names]


class FakeKube:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.cordoned: set[str] = set()
        self.marked: set[str] = set()  # carry the upgrading annotation
        self.ready_waits: list[dict[str, str | None]] = []  # each Ready wait's booted_since

    async def drain(self, node: str, *, timeout: float | None = None) -> list[ObjectRef]:
        self.cordoned.add(node)
        self.cluster.log.append(f"drain {node}")
        return [ObjectRef("v1", "Pod", f"app-{node}", "default")]

    async def apply(
        self, objects: Iterable[Mapping[str, Any]], *, field_manager: str = "hk8s"
    ) -> list[ObjectRef]:
        refs = []
        for obj in objects:
            name = obj["metadata"]["name"]
            if obj["kind"] == "Node":
                self.cordoned.add(name)
                if UPGRADING_ANNOTATION in obj["metadata"].get("annotations", {}):
                    self.marked.add(name)
                self.cluster.log.append(f"cordon {name}")
            refs.append(ObjectRef.of(dict(obj)))
        return refs

    async def uncordon(self, node: str, *, annotation: str | None = None) -> None:
        self.cordoned.discard(node)
        if annotation == UPGRADING_ANNOTATION:
            self.marked.discard(node)
        self.cluster.log.append(f"uncordon {node}")

    async def wait_nodes_ready(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        booted_since: Mapping[str, str | None] | None = None,
    ) -> list[KubeNode]:
        self.ready_waits.append(dict(booted_since or {}))
        return [n for n in await self.list_nodes() if n.name in set(names)]

    async def list_nodes(self, *, retry: bool = True) -> list[KubeNode]:
        return [
            KubeNode(
                name=n.name,
                ready=n.target is None,
                schedulable=n.name not in self.cordoned,
                roles=("control-plane",) if n.control_plane else (),
                kubelet_version=f"v{n.kubelet}",
            )
            for n in self.cluster.nodes.values()
        ]

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        fake = self.cluster.nodes.get(name)
        if kind != "Node" or fake is None:
            return {"metadata": {"name": name}}
        return {"metadata": {"name": name}, "status": {"nodeInfo": {"bootID": f"b{fake.boots}"}}}

    async def list(self, api_version: str, kind: str, **kw: Any) -> list[dict[str, Any]]:
        pods = []
        for n in self.cluster.nodes.values():
            if not n.control_plane:
                continue
            for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                pods.append(
                    {
                        "metadata": {"name": f"{component}-{n.name}"},
                        "spec": {"containers": [{"image": f"k8s/{component}:v{n.kubelet}"}]},
                        "status": {"phase": "Running"},
                    }
                )
        return pods


class FakeHcloud:
    def __init__(self) -> None:
        self.labels: dict[int, dict[str, str]] = {}

    async def set_labels(self, kind: str, resource_id: int, labels: dict[str, str]) -> None:
        self.labels[resource_id] = dict(labels)


def make_node(index: int, name: str, control_plane: bool) -> Node:
    role: Literal["control-plane", "worker"] = "control-plane" if control_plane else "worker"
    desired = DesiredServer(
        name, "cp" if control_plane else "workers", role, index, "cx23", "fsn1", "amd64",
        "pg", {},
    )  # fmt: skip
    server = Server(index, name, "running", "cx23", "fsn1", public_ipv4=f"10.0.0.{index}")
    return Node(desired, server)


@dataclass
class Rollout:
    cluster: Cluster
    talos: FakeTalos
    kube: FakeKube
    upgrader: NodeUpgrader


@pytest.fixture
def rollout() -> Rollout:
    names = [
        *((f"demo-cp-{i}", True) for i in (1, 2, 3)),
        *((f"demo-workers-{i}", False) for i in (1, 2, 3)),
    ]
    nodes = [make_node(i, name, cp) for i, (name, cp) in enumerate(names, 1)]
    cluster = Cluster({n.name: FakeNode(n.name, n.address, n.desired.control_plane) for n in nodes})
    talos, kube = FakeTalos(cluster), FakeKube(cluster)
    waiter = Waiter(ManualClock(), Timing())

    def render(node: Node, talos_version: str, kubernetes: str) -> bytes:
        return f"talos: {talos_version}\nkubernetes: {kubernetes}\n".encode()

    fakes: Any = (FakeHcloud(), talos, kube)  # structural fakes of the ports
    hcloud, talos_port, kube_port = fakes
    upgrader = NodeUpgrader(hcloud, talos_port, talos_port, kube_port, waiter, nodes, render)
    return Rollout(cluster, talos, kube, upgrader)
