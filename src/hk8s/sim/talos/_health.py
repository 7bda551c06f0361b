"""``ClusterService.HealthCheck``: the node-side ``talosctl health``.

Runs the default checks of siderolabs/talos ``pkg/cluster/check/default.go`` that the fleet
can judge (etcd health and membership, apid, kubelet, boot sequence, Kubernetes nodes
registered), streaming ``waiting for <check>: ...`` and then ``OK`` for each, as talosctl
prints them. A check that is still failing at ``wait_timeout`` ends the stream with
DeadlineExceeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hk8s.sim.talos._api import MAINTENANCE_UNIMPLEMENTED
from hk8s.talosapi.cluster import cluster_grpc, cluster_pb2

if TYPE_CHECKING:
    from collections.abc import Callable

    from grpclib.server import Stream

    from hk8s.sim.talos._gateway import Gateway
    from hk8s.sim.talos._node import TalosNode

__all__ = ["ClusterService"]

_POLL = 2.0  # simulated seconds between attempts of a failing check


class ClusterService(cluster_grpc.ClusterServiceBase):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def HealthCheck(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        node = self.gateway.node
        if node.maintenance:
            raise GRPCError(Status.UNIMPLEMENTED, MAINTENANCE_UNIMPLEMENTED)
        self.gateway.authorize(stream, "os:reader")
        cluster = node.cluster
        assert cluster is not None
        fleet = node.fleet
        info = request.cluster_info
        cps = list(info.control_plane_nodes)
        workers = list(info.worker_nodes)
        if not cps and not workers:
            for peer in fleet.running_nodes(cluster):
                role = peer.config.control_plane if peer.config else False
                (cps if role else workers).append(peer.ip)
        await stream.send_message(
            cluster_pb2.HealthCheckProgress(message=f"discovered nodes: {cps + workers}")
        )

        def nodes(addresses: list[str]) -> list[TalosNode | None]:
            return [fleet.node_by_address(a) for a in addresses]

        def up(n: TalosNode | None) -> bool:
            return n is not None and n.phase == "running"

        checks: list[tuple[str, Callable[[], bool]]] = [
            ("etcd to be healthy", lambda: cluster.quorum() and all(
                up(n) and n is not None and n.services.get("etcd", ("",))[0] == "Running"
                for n in nodes(cps))),
            ("etcd members to be consistent across nodes", lambda: cluster.bootstrapped),
            ("etcd members to be control plane nodes", lambda: sorted(
                m.ip for m in cluster.members.values()) == sorted(
                n.ip for n in nodes(cps) if n is not None)),
            ("apid to be ready", lambda: all(up(n) for n in nodes(cps + workers))),
            ("kubelet to be healthy", lambda: all(
                n is not None and n.kubelet_registered for n in nodes(cps + workers))),
            ("all nodes to finish boot sequence", lambda: all(up(n) for n in nodes(cps + workers))),
            ("all k8s nodes to report", lambda: cluster.kube_api_up and all(
                n is not None and n.kubelet_registered for n in nodes(cps + workers))),
        ]  # fmt: skip
        timeout = request.wait_timeout.ToTimedelta().total_seconds() or 600.0
        deadline = fleet.clock.now() + timeout
        for name, check in checks:
            await stream.send_message(
                cluster_pb2.HealthCheckProgress(message=f"waiting for {name}: ...")
            )
            while not check():
                if fleet.clock.now() >= deadline:
                    raise GRPCError(Status.DEADLINE_EXCEEDED, f"waiting for {name}: timeout")
                await fleet.clock.sleep(_POLL)
            await stream.send_message(
                cluster_pb2.HealthCheckProgress(message=f"waiting for {name}: OK")
            )
