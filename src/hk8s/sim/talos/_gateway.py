"""apid of a simulated node: authorization, ``nodes``/``node`` proxying, and the services.

Routing follows Talos' apid (``internal/app/apid/pkg/director``): without target metadata
the node itself answers; ``nodes`` (one value per node) runs a unary call on each target and
aggregates one message per node, each with ``metadata.hostname`` set to the target and a
failed node reported in ``metadata.error``/``metadata.status``; ``node`` proxies one call to
one target. Roles are the client certificate's Organizations (``os:admin``, ``os:operator``,
``os:reader``); too little -> PermissionDenied. In maintenance mode up to Talos 1.12 there
is no apid: the maintenance service answers alone and serves only ApplyConfiguration, Disks
and read-only COSI (``internal/app/maintenance/server.go``, gone in v1.13.0). From 1.13 on
apid serves maintenance mode too, without verifying client certificates, and gives every
caller the Reader role (``pkg/grpc/middleware/authz/injector.go`` ReadOnly): Version,
ServiceList, Disks, Events and COSI reads answer; ApplyConfiguration checks maintenance
itself; the rest is PermissionDenied. apid forwards ``nodes``/``node`` only when it has a
client certificate, which only control planes get (``internal/app/apid/service.go``:
no client TLS config -> no remote backend factory; director.go answers PermissionDenied "no
request forwarding", except for a single target that is the node itself).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hk8s.sim.talos._api import NodeCalls
from hk8s.sim.talos._node import REPLY_ACTIONS
from hk8s.sim.talos._streams import NodeStreams
from hk8s.sim.talos._tls import roles_of
from hk8s.talosapi.google.rpc import status_pb2
from hk8s.talosapi.machine import machine_pb2
from hk8s.talosapi.storage import storage_pb2

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from grpclib.server import Stream

    from hk8s.sim.talos._node import TalosNode

__all__ = ["ADMIN", "OPERATOR", "READER", "Gateway", "targets_of"]

READER, OPERATOR, ADMIN = "os:reader", "os:operator", "os:admin"
_LEVEL = {READER: 1, OPERATOR: 2, ADMIN: 3}
# Roles outside the reader < operator < admin ladder that a method also admits: machined's
# rules (internal/app/machined/pkg/system/services/machined.go) let os:etcd:backup, the role
# of talos-backup's service account, take etcd snapshots and nothing else.
ETCD_BACKUP = "os:etcd:backup"
_ALSO = {"EtcdSnapshot": frozenset({ETCD_BACKUP})}


@dataclass(frozen=True)
class _Unary:
    func: str
    response: Any
    item: Any
    role: str


# method, NodeCalls function, role needed; the reply is <method>Response of <method> items
# (EtcdMemberList's items are EtcdMembers).
_TABLE = [
    ("ApplyConfiguration", "apply_configuration", ADMIN),
    ("Bootstrap", "bootstrap", ADMIN),
    ("EtcdMemberList", "etcd_member_list", READER),
    ("EtcdRemoveMemberByID", "etcd_remove_member_by_id", ADMIN),
    ("EtcdLeaveCluster", "etcd_leave_cluster", ADMIN),
    ("EtcdForfeitLeadership", "etcd_forfeit_leadership", OPERATOR),
    ("EtcdStatus", "etcd_status", READER),
    ("Reboot", "reboot", OPERATOR),
    ("Reset", "reset", ADMIN),
    ("ServiceList", "service_list", READER),
    ("ServiceRestart", "service_restart", OPERATOR),
    ("Shutdown", "shutdown", OPERATOR),
    ("Upgrade", "upgrade", ADMIN),
    ("Version", "version", READER),
]
_UNARY: dict[str, _Unary] = {
    name: _Unary(
        func,
        getattr(machine_pb2, f"{name}Response"),
        getattr(machine_pb2, "EtcdMembers" if name == "EtcdMemberList" else name),
        role,
    )
    for name, func, role in _TABLE
}
_UNARY["Disks"] = _Unary("disks", storage_pb2.DisksResponse, storage_pb2.Disks, READER)
_STREAMS: dict[str, tuple[str, str]] = {
    "Kubeconfig": ("kubeconfig", ADMIN),
    "Events": ("events", READER),
    "Logs": ("logs", OPERATOR),
    "Dmesg": ("dmesg", OPERATOR),
    "Read": ("read", ADMIN),
    "EtcdSnapshot": ("etcd_snapshot", OPERATOR),
}
# What the maintenance service registers; its Version/Upgrade/Reset answer Unimplemented for
# callers without os:admin, which maintenance-mode callers never have.
_MAINTENANCE = {"ApplyConfiguration", "Disks", "Version", "Upgrade", "Reset"}


def _unavailable(target: str, port: int, why: str) -> GRPCError:
    return GRPCError(
        Status.UNAVAILABLE,
        'connection error: desc = "transport: Error while dialing: '
        f'dial tcp {target}:{port}: {why}"',
    )


class Gateway:
    """Authorization and routing for one node's calls."""

    def __init__(self, node: TalosNode) -> None:
        self.node = node

    def authorize(
        self, stream: Stream[Any, Any], role: str, also: frozenset[str] = frozenset()
    ) -> None:
        if self.node.maintenance:
            if self.node.apid_in_maintenance and _LEVEL[role] > _LEVEL[READER]:
                raise GRPCError(Status.PERMISSION_DENIED, "not authorized")
            return
        roles = roles_of(stream.peer.cert() if stream.peer else None)
        if roles & also:
            return
        if max((_LEVEL.get(r, 0) for r in roles), default=0) < _LEVEL[role]:
            raise GRPCError(Status.PERMISSION_DENIED, "not authorized")

    def routing(self, stream: Stream[Any, Any]) -> tuple[list[str], str | None]:
        """``targets_of``, as apid's director applies it: a node without a client
        certificate (a worker, or any node in maintenance mode) forwards nothing; a single
        target that is the node itself is served locally."""
        nodes, one = targets_of(stream)
        node = self.node
        config = node.config
        if not (nodes or one) or (config is not None and config.control_plane):
            return nodes, one
        local = {*node.addresses, node.hostname}
        if one is not None and one in local:
            return [], None
        if one is None and len(nodes) == 1 and nodes[0] in local:
            return [], None
        raise GRPCError(Status.PERMISSION_DENIED, "no request forwarding")

    def target(self, name: str) -> TalosNode:
        """The node apid reaches for ``name``: configured, up, and of the same cluster."""
        node, port = self.node, self.node.fleet.port
        target = node.fleet.node_by_address(name)
        if target is None or target.phase not in {"running", "maintenance"}:
            raise _unavailable(name, port, "connect: connection refused")
        mine, theirs = node.config, target.config
        if mine is None or theirs is None or theirs.os_ca_crt != mine.os_ca_crt:
            raise GRPCError(
                Status.UNAVAILABLE,
                'connection error: desc = "transport: authentication handshake failed: '
                'tls: failed to verify certificate: x509: certificate signed by unknown authority"',
            )
        return target

    async def unary(self, stream: Stream[Any, Any], method: str) -> None:
        pending: list[Callable[[], None]] = []
        token = REPLY_ACTIONS.set(pending)
        try:
            await self._unary(stream, method)
            await stream.send_trailing_metadata()
        finally:
            REPLY_ACTIONS.reset(token)
            for action in pending:
                action()

    async def _unary(self, stream: Stream[Any, Any], method: str) -> None:
        spec = _UNARY[method]
        request = await stream.recv_message()
        node = self.node
        if node.maintenance and not self.node.apid_in_maintenance:
            if method not in _MAINTENANCE:
                raise GRPCError(Status.UNIMPLEMENTED, f"method {method} not implemented")
            item = await getattr(NodeCalls(node), spec.func)(request)
            await stream.send_message(spec.response(messages=[item]))
            return
        # ApplyConfiguration is Admin or (maintenance only, checked by the handler) Reader.
        self.authorize(stream, READER if method == "ApplyConfiguration" else spec.role)
        nodes, one = self.routing(stream)
        if nodes:
            items = await asyncio.gather(*(self._proxied(t, spec, request) for t in nodes))
        else:
            target = self.target(one) if one else node
            items = [await getattr(NodeCalls(target), spec.func)(request)]
        await stream.send_message(spec.response(messages=items))

    async def _proxied(self, name: str, spec: _Unary, request: Any) -> Any:
        try:
            item = await getattr(NodeCalls(self.target(name)), spec.func)(request)
        except GRPCError as exc:
            item = spec.item()
            text = f"rpc error: code = {_go_code(exc.status)} desc = {exc.message}"
            item.metadata.error = text
            item.metadata.status.CopyFrom(status_pb2.Status(code=exc.status.value, message=text))
        item.metadata.hostname = name
        return item

    async def server_stream(self, stream: Stream[Any, Any], method: str) -> None:
        func, role = _STREAMS[method]
        request = await stream.recv_message()
        if self.node.maintenance and not self.node.apid_in_maintenance:
            raise GRPCError(Status.UNIMPLEMENTED, f"method {method} not implemented")
        self.authorize(stream, role, _ALSO.get(method, frozenset()))
        nodes, one = self.routing(stream)
        if len(nodes) > 1:
            sources = [(t, getattr(NodeStreams(self.target(t)), func)(request)) for t in nodes]
            async for message in _merge(sources):
                await stream.send_message(message)
            return
        name = one or (nodes[0] if nodes else None)
        target = self.target(name) if name else self.node
        async for message in getattr(NodeStreams(target), func)(request):
            if nodes:
                message.metadata.hostname = name
            await stream.send_message(message)


def targets_of(stream: Stream[Any, Any]) -> tuple[list[str], str | None]:
    """apid's routing metadata: ``nodes`` (one-to-many) and ``node`` (one-to-one)."""
    metadata = stream.metadata
    if not metadata:
        return [], None
    nodes = [str(v) for v in metadata.getall("nodes", [])]
    one = metadata.get("node")
    return nodes, str(one) if one else None


def _go_code(status: Status) -> str:
    """grpc-go's code names (``codes.Code.String``): CamelCase."""
    return "".join(part.capitalize() for part in status.name.split("_")).replace("Id", "ID")


async def _merge(sources: list[tuple[str, AsyncIterator[Any]]]) -> AsyncIterator[Any]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    async def pump(name: str, source: AsyncIterator[Any]) -> None:
        try:
            async for message in source:
                message.metadata.hostname = name
                await queue.put(message)
        finally:
            await queue.put(done)

    tasks = [asyncio.ensure_future(pump(name, source)) for name, source in sources]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is done:
                remaining -= 1
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
