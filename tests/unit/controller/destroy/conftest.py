"""Two clusters and some strangers in one fake Hetzner project, and a fake Kubernetes API."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest

from hk8s.controller import Destroyer, RecordingReporter
from hk8s.model import ManualClock, Timing
from hk8s.model.resources import (
    Firewall,
    Image,
    LBTarget,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrivateIP,
    Server,
    SSHKey,
    Volume,
)
from hk8s.providers.hcloud.fake import FakeHcloud
from hk8s.providers.k8s import ObjectRef

_ids = itertools.count(1000)


def owned(cluster: str, **extra: str) -> dict[str, str]:
    return {"cluster": cluster, "managed-by": "hk8s", **extra}


def add_cluster(fake: FakeHcloud, cluster: str, *, servers: int = 3) -> dict[str, Any]:
    """What ``hk8s create`` leaves: network, firewall, LB, groups, key, servers (ids returned)."""
    net = Network(next(_ids), cluster, "10.0.0.0/16", owned(cluster, component="network"))
    fw = Firewall(
        next(_ids),
        f"{cluster}-fw",
        owned(cluster, component="firewall"),
        applied_selectors=(f"cluster={cluster},managed-by=hk8s",),
    )
    lb = LoadBalancer(
        next(_ids),
        f"{cluster}-api",
        "lb11",
        "fsn1",
        owned(cluster, component="load-balancer"),
        private_ips=(PrivateIP(net.id, "10.0.0.2"),),
    )
    group = PlacementGroup(next(_ids), f"{cluster}-cp-pg-1", labels=owned(cluster, pool="cp"))
    key = SSHKey(next(_ids), f"{cluster}-admin", "fp", "ssh-ed25519 AAAA", owned(cluster))
    fake.networks[net.id] = net
    fake.firewalls[fw.id] = fw
    fake.load_balancers[lb.id] = lb
    fake.ssh_keys[key.id] = key
    ids = []
    for n in range(1, servers + 1):
        server = Server(
            next(_ids),
            f"{cluster}-cp-{n}",
            "running",
            "cx23",
            "fsn1",
            owned(cluster, role="control-plane", pool="cp"),
            image_id=7,
            private_ips=(PrivateIP(net.id, f"10.0.1.{n}"),),
            placement_group_id=group.id,
        )
        fake.servers[server.id] = server
        ids.append(server.id)
    fake.placement_groups[group.id] = PlacementGroup(
        group.id, group.name, labels=group.labels, server_ids=tuple(ids)
    )
    return {"network": net.id, "servers": ids, "lb": lb.id, "firewall": fw.id}


def add_ccm_lb(
    fake: FakeHcloud, uid: str, *, network: int | None = None, server: int | None = None
) -> int:
    lb = LoadBalancer(
        next(_ids),
        f"a{uid}",
        "lb11",
        "fsn1",
        {"hcloud-ccm/service-uid": uid},
        private_ips=(PrivateIP(network, "10.0.0.9"),) if network else (),
        targets=(LBTarget("server", server_id=server),) if server else (),
    )
    fake.load_balancers[lb.id] = lb
    return lb.id


def add_volume(fake: FakeHcloud, name: str, **labels: str) -> int:
    server = labels.pop("server", None)
    volume = Volume(
        next(_ids),
        name,
        10,
        "fsn1",
        {"managed-by": "csi-driver", **labels},
        server_id=int(server) if server else None,
    )
    fake.volumes[volume.id] = volume
    return volume.id


def add_snapshot(fake: FakeHcloud, image_id: int, **labels: str) -> None:
    fake.images[image_id] = Image(
        image_id, None, "snapshot", "available", "x86", f"talos {image_id}", dict(labels)
    )


@pytest.fixture
def fake() -> FakeHcloud:
    return FakeHcloud()


@pytest.fixture
def world(fake: FakeHcloud) -> dict[str, Any]:
    """Cluster ``demo`` (to destroy), cluster ``prod`` and two unlabelled look-alikes."""
    demo = add_cluster(fake, "demo")
    prod = add_cluster(fake, "prod", servers=2)
    stranger = Server(next(_ids), "demo-cp-9", "running", "cx23", "fsn1", {"cluster": "demo"})
    fake.servers[stranger.id] = stranger  # not managed-by=hk8s: never touched
    fake.networks[next(_ids)] = Network(next(_ids), "demo-legacy", "10.9.0.0/16", {})
    return {"demo": demo, "prod": prod, "stranger": stranger.id}


def destroyer(fake: FakeHcloud, cluster: str = "demo", **kwargs: Any) -> Destroyer:
    kwargs.setdefault("reporter", RecordingReporter())
    return Destroyer(fake, cluster, clock=ManualClock(), timing=Timing(), **kwargs)


@dataclass
class FakeKube:
    """The slice of ``KubernetesAPI`` destroy uses; the CCM/CSI 'run' when ``controllers``."""

    services: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    reachable: bool = True
    # Called after each poll: lets a test play the CCM removing a Service's finalizer.
    on_poll: Any = None
    deleted: list[str] = field(default_factory=list)
    probed: int = 0

    async def wait_api_ready(self, *, timeout: float | None = None) -> None:
        from hk8s.errors import WaitTimeoutError

        self.probed += 1

        if not self.reachable:
            raise WaitTimeoutError("the Kubernetes API to answer", timeout or 0.0)

    async def list(self, api_version: str, kind: str, **_: Any) -> list[dict[str, Any]]:
        if kind == "PersistentVolume" and self.on_poll is not None and self.deleted:
            self.on_poll(self)
        return {"Service": self.services, "PersistentVolume": self.volumes}.get(kind, [])

    async def list_load_balancer_services(self) -> list[ObjectRef]:
        return [
            ObjectRef("v1", "Service", s["metadata"]["name"], s["metadata"]["namespace"])
            for s in self.services
            if s["spec"]["type"] == "LoadBalancer"
        ]

    async def delete_load_balancer_services(self) -> list[ObjectRef]:
        refs = await self.list_load_balancer_services()
        self.deleted.extend(str(r) for r in refs)
        for s in self.services:
            s["metadata"]["deletionTimestamp"] = "now"
        return refs

    async def list_pvcs(self) -> list[ObjectRef]:
        return [
            ObjectRef(
                "v1", "PersistentVolumeClaim", c["metadata"]["name"], c["metadata"]["namespace"]
            )
            for c in self.claims
        ]

    async def delete_pvcs(self) -> list[ObjectRef]:
        refs = await self.list_pvcs()
        self.deleted.extend(str(r) for r in refs)
        self.claims.clear()
        return refs

    async def close(self) -> None:
        return None


def service(name: str, uid: str, type_: str = "LoadBalancer") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": uid},
        "spec": {"type": type_},
    }


def persistent_volume(name: str, claim: str, policy: str = "Delete") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "csi": {"driver": "csi.hetzner.cloud"},
            "claimRef": {"namespace": "default", "name": claim},
            "persistentVolumeReclaimPolicy": policy,
        },
    }


def claim(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}}
