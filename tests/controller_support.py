"""Fakes for the controller's tests: a Talos fleet and a Kubernetes API, both in memory, the
``harness`` that runs a command's flow on them, and infrastructure intents.

They keep just enough state to answer like the real thing in the ways ``create`` depends on:
a node in maintenance mode answers only insecure calls, a configured one only mTLS calls;
etcd has members once bootstrapped; Kubernetes lists a Node per configured node. Every
command's tests and the shared modules' use them (``tests/unit/controller/conftest.py`` hands
them out as fixtures), so they live here, importable as ``controller_support`` like
``e2e_support``, rather than in one command's folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.config import parse_config
from hk8s.controller import (
    ClusterImages,
    CreateOptions,
    CreatePorts,
    InfraComponent,
    InfraIntent,
    LoadBalancerIntent,
    PoolIntent,
    infra_intent,
)
from hk8s.errors import AuthError, ConflictError, UnavailableError
from hk8s.model import ManualClock, Timing
from hk8s.providers.k8s import KubeNode, NodeTaint, ObjectRef
from hk8s.providers.talos import (
    ApplyMode,
    ApplyResult,
    BootstrapOutcome,
    EtcdMember,
    ServiceStatus,
    VersionInfo,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from hk8s.config import ClusterConfig
    from hk8s.pki import SecretsBundle
    from hk8s.providers.hcloud.fake import FakeHcloud

TOKEN = "tok-SECRET-0123456789"


@dataclass
class FakeTalos:
    """Nodes by address. ``hostnames`` maps an address to its server name (from the fake)."""

    hcloud: FakeHcloud
    configs: dict[str, bytes] = field(default_factory=dict)
    applied: list[tuple[str, ApplyMode, bool]] = field(default_factory=list)
    bootstraps: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    releases: dict[str, str] = field(default_factory=dict)  # what each node's disk boots
    closing: dict[str, int] = field(default_factory=dict)  # mTLS calls cut after handshake
    # Config changes need a reboot (CanApplyImmediate says no): a node applied in AUTO
    # mode reboots, unavailable for a few Version calls; the most down at once is kept.
    reboot_changes: bool = False
    rebooting: dict[str, int] = field(default_factory=dict)
    max_rebooting: int = 0

    def name(self, node: str) -> str:
        return next(s.name for s in self.hcloud.servers.values() if s.public_ipv4 == node)

    def _control_plane(self, node: str) -> bool:
        return b"type: controlplane" in self.configs.get(node, b"")

    async def apply_config(
        self,
        node: str,
        data: bytes,
        mode: ApplyMode,
        *,
        maintenance: bool = False,
        dry_run: bool = False,
    ) -> ApplyResult:
        if dry_run:  # Talos' CanApplyImmediate, as far as this fake knows it
            needs = self.reboot_changes and data != self.configs.get(node)
            return ApplyResult(ApplyMode.REBOOT if needs else ApplyMode.NO_REBOOT)
        self.calls.append(f"apply {self.name(node)}")
        if maintenance == (node in self.configs):
            raise AuthError("wrong mode")
        if not maintenance and self.reboot_changes and data != self.configs.get(node):
            self.rebooting[node] = 2
            self.max_rebooting = max(self.max_rebooting, sum(map(bool, self.rebooting.values())))
            self.configs[node] = data
            self.applied.append((self.name(node), mode, maintenance))
            return ApplyResult(ApplyMode.REBOOT)
        self.configs[node] = data
        if maintenance:  # the node installs the release its config names, then reboots
            self.releases[node] = _image_tag(data, "-installer/")
        self.applied.append((self.name(node), mode, maintenance))
        if self.members and self._control_plane(node) and self.name(node) not in self.members:
            self.members.append(self.name(node))
        return ApplyResult(ApplyMode.NO_REBOOT if not maintenance else ApplyMode.REBOOT)

    async def version(self, node: str, *, maintenance: bool = False) -> VersionInfo:
        if maintenance and node in self.configs:
            raise AuthError("client certificate required")
        if not maintenance and node not in self.configs:
            raise UnavailableError("maintenance certificate is not signed by the cluster CA")
        if not maintenance and self.rebooting.get(node):
            self.rebooting[node] -= 1
            raise UnavailableError("rebooting")
        if not maintenance and self.closing.get(node):
            self.closing[node] -= 1  # going down for a reboot: reads as a refused certificate
            raise AuthError("the node closed the connection right after the TLS handshake")
        return VersionInfo(self.releases.get(node, "v1.12.0"))

    async def bootstrap(self, node: str) -> BootstrapOutcome:
        self.bootstraps.append(self.name(node))
        if self.members:
            return BootstrapOutcome.ALREADY_BOOTSTRAPPED
        self.members = sorted(self.name(n) for n in self.configs if self._control_plane(n))
        return BootstrapOutcome.STARTED

    async def etcd_members(self, node: str) -> list[EtcdMember]:
        if node not in self.configs or not self.members:
            raise UnavailableError("etcd is not running")
        return [EtcdMember(i + 1, name) for i, name in enumerate(self.members)]

    async def kubeconfig(self, node: str) -> str:
        return yaml.safe_dump(
            {"apiVersion": "v1", "clusters": [{"name": "x", "cluster": {"server": "https://x"}}]}
        )

    async def services(self, node: str) -> list[ServiceStatus]:
        names = ("apid", "etcd", "kubelet", "trustd") if self._control_plane(node) else ("apid",)
        return [ServiceStatus(n, "Running", True) for n in (*names, "kubelet")]

    async def leave_etcd(self, node: str) -> None:
        name = self.name(node)
        self.left.append(name)
        self.members = [m for m in self.members if m != name]

    async def remove_etcd_member(self, node: str, member_id: int) -> None:
        raise ConflictError("not expected in these tests")

    async def upgrade(
        self, node: str, image: str, *, preserve: bool = False, stage: bool = False
    ) -> None:
        raise NotImplementedError

    async def reboot(self, node: str, mode: Any = None) -> None:
        raise NotImplementedError

    async def reset(self, node: str, *, graceful: bool = True, reboot: bool = False) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


def _image_tag(config: bytes, marker: str) -> str:
    """The tag of the first image in a rendered machine config whose name has ``marker``."""
    for line in config.decode().splitlines():
        if "image:" in line and marker in line:
            return line.rpartition(":")[2].strip()
    raise AssertionError(f"no {marker} image in the config")


@dataclass
class FakeKube:
    talos: FakeTalos
    applied: list[dict[str, Any]] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # objects deleted (kind/name)
    cordoned: set[str] = field(default_factory=set)
    taints: dict[str, tuple[NodeTaint, ...]] = field(default_factory=dict)  # by node name
    down: bool = False  # the API does not answer (not bootstrapped yet)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)  # by node name

    def _names(self) -> list[str]:
        live = {s.public_ipv4 for s in self.talos.hcloud.servers.values()}
        return sorted(self.talos.name(a) for a in self.talos.configs if a in live)

    async def apply(
        self, objects: Iterable[Mapping[str, Any]], *, field_manager: str = "hk8s"
    ) -> list[ObjectRef]:
        self.applied.extend(dict(o) for o in objects)
        return [ObjectRef.of(dict(o)) for o in objects]

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return {"metadata": {"name": name}}

    async def delete(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> bool:
        self.removed.append(f"{kind}/{name}")
        return True

    async def wait_api_ready(self, *, timeout: float | None = None) -> None:
        return None

    async def wait_nodes_ready(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        booted_since: Mapping[str, str | None] | None = None,
    ) -> list[KubeNode]:
        assert set(names) <= set(self._names())
        return await self.list_nodes()

    async def wait_rollout(
        self, kind: str, namespace: str, name: str, *, timeout: float | None = None
    ) -> None:
        return None

    async def wait_job(self, namespace: str, name: str, *, timeout: float | None = None) -> None:
        return None

    async def wait_served(
        self, api_version: str, kind: str, *, timeout: float | None = None
    ) -> None:
        return None

    async def retry_failed_job(self, namespace: str, name: str) -> bool:
        return False

    async def list_nodes(self, *, retry: bool = True) -> list[KubeNode]:
        if self.down:
            raise UnavailableError("Kubernetes API not reachable: connection refused")
        live = {s.public_ipv4 for s in self.talos.hcloud.servers.values()}
        by_name = {self.talos.name(a): c for a, c in self.talos.configs.items() if a in live}
        return [
            KubeNode(
                n,
                True,
                n not in self.cordoned,
                kubelet_version=_image_tag(by_name[n], "/kubelet:"),
                annotations=self.annotations.get(n, {}),
                taints=self.taints.get(n, ()),
            )
            for n in self._names()
            if n not in self.deleted
        ]

    async def cordon(self, node: str) -> None:
        self.cordoned.add(node)

    async def uncordon(self, node: str, *, annotation: str | None = None) -> None:
        self.cordoned.discard(node)

    async def drain(self, node: str, *, timeout: float | None = None) -> list[ObjectRef]:
        self.cordoned.add(node)
        self.drained.append(node)
        return [ObjectRef("v1", "Pod", f"pod-on-{node}", "default")]

    async def delete_node(self, node: str) -> bool:
        self.deleted.append(node)
        self.cordoned.discard(node)
        return True

    async def close(self) -> None:
        return None

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        live = {s.public_ipv4 for s in self.talos.hcloud.servers.values()}
        cps = [
            self.talos.name(a)
            for a in self.talos.configs
            if a in live and self.talos._control_plane(a)
        ]
        return [
            {"metadata": {"name": f"{c}-{n}"}, "status": {"phase": "Running"}}
            for n in cps
            for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
        ]


@dataclass
class Harness:
    hcloud: FakeHcloud
    talos: FakeTalos
    kube: FakeKube
    tmp: Path
    clock: ManualClock

    def ports(self, config: ClusterConfig) -> CreatePorts:
        intent = infra_intent(config, "203.0.113.7")
        return CreatePorts(
            hcloud=self.hcloud,
            talos=self._talos,
            kube=lambda _kubeconfig: self.kube,  # type: ignore[arg-type,return-value]
            clock=self.clock,
            timing=Timing(),
            infra=[InfraComponent(self.hcloud, intent)],
            images=ClusterImages({"amd64": 99, "arm64": 98}, "a" * 64),
        )

    def _talos(self, bundle: SecretsBundle) -> tuple[Any, Any]:
        return self.talos, self.talos

    def options(self, **changes: Any) -> CreateOptions:
        base = CreateOptions(
            secrets_path=self.tmp / "secrets.yaml",
            kubeconfig_path=self.tmp / "kubeconfig",
            talosconfig_path=self.tmp / "talosconfig",
            token=TOKEN,
        )
        return dataclasses.replace(base, **changes)


def cluster(cp: int = 1, workers: int = 0, extra: str = "") -> ClusterConfig:
    text = f"name: demo\nlocation: fsn1\ncontrol_plane:\n  count: {cp}\n"
    if workers:
        text += f"workers:\n  - name: workers\n    count: {workers}\n"
    text += (
        "firewall:\n  kube_api_sources: [203.0.113.7/32]\n  talos_api_sources: [203.0.113.7/32]\n"
    )
    return parse_config(text + extra)


def make_intent(**changes: Any) -> InfraIntent:
    base = InfraIntent(
        cluster="demo",
        location="fsn1",
        network_zone="eu-central",
        network_cidr="10.0.0.0/16",
        node_subnet="10.0.1.0/24",
        pools=(PoolIntent("cp", 3, "control-plane"), PoolIntent("workers", 12, "worker")),
        kube_api_sources=("203.0.113.7/32",),
        talos_api_sources=("203.0.113.7/32",),
        load_balancer=LoadBalancerIntent("lb11", "fsn1"),
    )
    return dataclasses.replace(base, **changes)
