"""The gRPC services a simulated node registers on its apid listener.

Handlers are thin: ``Gateway`` (``_gateway``) authorizes and routes, ``NodeCalls`` and
``NodeStreams`` answer. The maintenance listener registers the same services; the gateway
refuses what the maintenance service of Talos does not serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hk8s.model.etcd_snapshot import SnapshotError, inspect_snapshot
from hk8s.sim.talos._cosi import StateService
from hk8s.sim.talos._gateway import _STREAMS, _UNARY, ADMIN, Gateway
from hk8s.sim.talos._health import ClusterService
from hk8s.talosapi.machine import machine_grpc, machine_pb2
from hk8s.talosapi.storage import storage_grpc

if TYPE_CHECKING:
    from grpclib.server import Stream

    from hk8s.sim.talos._node import TalosNode

__all__ = ["MachineService", "StorageService", "services_for"]

m = machine_pb2


def _unary_handler(method: str) -> Any:
    async def handler(self: MachineService, stream: Stream[Any, Any]) -> None:
        await self.gateway.unary(stream, method)

    return handler


def _stream_handler(method: str) -> Any:
    async def handler(self: MachineService, stream: Stream[Any, Any]) -> None:
        await self.gateway.server_stream(stream, method)

    return handler


class MachineService(machine_grpc.MachineServiceBase):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def EtcdRecover(self, stream: Stream[Any, Any]) -> None:
        node = self.gateway.node
        if node.maintenance:
            raise GRPCError(Status.UNIMPLEMENTED, "method EtcdRecover not implemented")
        self.gateway.authorize(stream, ADMIN)
        blob = b"".join([chunk.bytes async for chunk in stream])
        try:
            inspect_snapshot(blob)
        except SnapshotError as exc:
            raise GRPCError(Status.INVALID_ARGUMENT, f"invalid etcd snapshot: {exc}") from exc
        node.recovery_snapshot = blob
        await stream.send_message(m.EtcdRecoverResponse(messages=[m.EtcdRecover()]))


for _name in _UNARY:
    if _name != "Disks":
        setattr(MachineService, _name, _unary_handler(_name))
for _name in _STREAMS:
    setattr(MachineService, _name, _stream_handler(_name))
MachineService.__abstractmethods__ = frozenset()


class StorageService(storage_grpc.StorageServiceBase):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def Disks(self, stream: Stream[Any, Any]) -> None:
        await self.gateway.unary(stream, "Disks")


def services_for(node: TalosNode) -> list[Any]:
    gateway = Gateway(node)
    machine = MachineService(gateway)  # type: ignore[abstract]  # handlers are set above
    return [machine, StorageService(gateway), StateService(gateway), ClusterService(gateway)]
