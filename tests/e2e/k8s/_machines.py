"""A real control plane with simulated machines around it, without the rest of the world:
what hk8s' Kubernetes provider is checked against (``test_provider``, ``test_destroy``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.model import ScaledClock, Timing
from hk8s.pki import generate_admin_kubeconfig, generate_secrets
from hk8s.providers.k8s import KubeClient
from hk8s.sim.k8s import ClusterSecrets, ControlPlane, find_binaries
from hk8s.sim.machines import CloudInstance, ClusterMachines, HelmFaults, KubeletNode, Timings
from hk8s.sim.world._blocks import claim_block

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from hk8s.sim.machines import Program, TalosAccess

SPEED = 100.0
# Three workers: the drain test's two replicas, kept on separate nodes by a required
# anti-affinity, need a third node to move to while one is cordoned.
NODES = {
    "demo-cp-1": "control-plane",
    "demo-w-1": "worker",
    "demo-w-2": "worker",
    "demo-w-3": "worker",
}
_CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@dataclass
class Machines:
    plane: ControlPlane
    machines: ClusterMachines
    kube: KubeClient
    faults: HelmFaults
    kubeconfig: str


@contextlib.asynccontextmanager
async def machines(
    nodes: Mapping[str, str] = NODES,
    *,
    programs: dict[str, Program] | None = None,
    talos_access: Callable[[], TalosAccess | None] = lambda: None,
) -> AsyncIterator[Machines]:
    """``nodes`` (name -> role) registered by their kubelets; the CCM knows each as server
    100, 101, ... of type cx23 in fsn1. ``programs`` and ``talos_access`` as the world sets
    them (``ClusterMachines``)."""
    block, claim = claim_block(None)
    host = f"127.{block}.128.2"
    bundle = generate_secrets()
    secrets = ClusterSecrets(
        bundle.k8s_ca,
        bundle.k8s_aggregator_ca,
        bundle.service_account_key_pem,
        issuer=f"https://{host}:6443",
        secretbox=bundle.secretbox_encryption_secret,
    )
    clock = ScaledClock(SPEED)
    ids = {name: 100 + i for i, name in enumerate(nodes)}
    faults = HelmFaults()
    plane = ControlPlane(find_binaries(), secrets, host=host)
    try:
        await plane.start()
        world = ClusterMachines(
            plane,
            bundle.k8s_ca,
            clock,
            timings=Timings(lease_renew=5 * SPEED),
            faults=faults,
            instance=lambda name: CloudInstance(ids[name], "cx23", "fsn1"),
            programs=programs,
            talos_access=talos_access,
        )
        world.start()
        for i, (name, role) in enumerate(nodes.items()):
            control_plane = role == "control-plane"
            await world.kubelets.register(
                KubeletNode(
                    name,
                    internal_ip=f"10.0.1.{i + 1}",
                    external_ip=f"127.{block}.0.{i + 2}",
                    control_plane=control_plane,
                    labels={"node-role.kubernetes.io/control-plane": ""} if control_plane else {},
                    taints=[_CP_TAINT] if control_plane else [],
                    kubelet_version="1.36.3",
                    os_image="Talos (v1.14.1)",
                )
            )
        kubeconfig = generate_admin_kubeconfig("demo", bundle.k8s_ca, plane.url)
        timing = Timing().scaled(SPEED)
        kube = KubeClient.from_kubeconfig_text(kubeconfig, clock=clock, timing=timing)
        try:
            yield Machines(plane, world, kube, faults, kubeconfig)
        finally:
            await kube.close()
            await world.close()
    finally:
        await plane.stop()
        claim.close()
