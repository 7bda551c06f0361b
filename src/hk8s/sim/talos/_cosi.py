"""The read-only COSI ``State`` service (``talosctl get``) of a simulated node.

Talos proxies COSI calls one node at a time (``node`` metadata). Get of a missing resource is
``NotFound``; sensitive types need ``os:admin`` (PermissionDenied otherwise, and always in
maintenance mode). Watch sends the current resources, a BOOTSTRAPPED marker (api_version 1),
then changes as the node's state moves on.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hk8s.sim.talos._gateway import targets_of
from hk8s.sim.talos._resources import SENSITIVE_TYPES, NodeResource, node_resources
from hk8s.talosapi.cosi import state_grpc, state_pb2

if TYPE_CHECKING:
    from grpclib.server import Stream

    from hk8s.sim.talos._gateway import Gateway
    from hk8s.sim.talos._node import TalosNode

__all__ = ["StateService"]

_WATCH_POLL = 1.0  # simulated seconds between looks at the node's state


def _matches(res: NodeResource, namespace: str, type_: str) -> bool:
    # Talos accepts the full type or its lower-case short forms; namespace may be empty.
    short = type_.lower()
    names = {res.type.lower(), res.type.split(".")[0].lower(), res.type.split(".")[0].lower()[:-1]}
    return short in names and namespace in {"", res.namespace}


class StateService(state_grpc.StateBase):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _node(self, stream: Stream[Any, Any]) -> TalosNode:
        self.gateway.authorize(stream, "os:reader")
        _, target = targets_of(stream)
        if target and not self.gateway.node.maintenance:
            return self.gateway.target(target)
        return self.gateway.node

    def _visible(self, stream: Stream[Any, Any], type_: str, node: TalosNode) -> list[NodeResource]:
        # The access filter goes by type, whether or not such a resource exists yet.
        if any(_matches(NodeResource("", t, "", None), "", type_) for t in SENSITIVE_TYPES):
            if node.maintenance:
                raise GRPCError(Status.PERMISSION_DENIED, "not authorized")
            self.gateway.authorize(stream, "os:admin")
        return node_resources(node)

    async def Get(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        node = self._node(stream)
        for res in self._visible(stream, request.type, node):
            if _matches(res, request.namespace, request.type) and res.id == request.id:
                await stream.send_message(state_pb2.GetResponse(resource=res.to_proto()))
                return
        raise GRPCError(Status.NOT_FOUND, f"resource {request.type} {request.id!r} doesn't exist")

    async def List(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        node = self._node(stream)
        pattern = request.options.id_query.regexp if request.HasField("options") else ""
        for res in self._visible(stream, request.type, node):
            if _matches(res, request.namespace, request.type) and (
                not pattern or re.search(pattern, res.id)
            ):
                await stream.send_message(state_pb2.ListResponse(resource=res.to_proto()))

    async def Watch(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        node = self._node(stream)
        wanted_id = request.id if request.HasField("id") else None

        def current() -> dict[str, NodeResource]:
            return {
                r.id: r
                for r in self._visible(stream, request.type, node)
                if _matches(r, request.namespace, request.type) and wanted_id in (None, r.id)
            }

        seen = current()
        versions = dict.fromkeys(seen, 1)
        events = []
        if request.options.bootstrap_contents:
            events = [
                state_pb2.Event(event_type=state_pb2.CREATED, resource=r.to_proto())
                for r in seen.values()
            ]
            if request.api_version >= 1:
                events.append(state_pb2.Event(event_type=state_pb2.BOOTSTRAPPED))
        if events:
            await stream.send_message(state_pb2.WatchResponse(event=events))
        while node.phase != "off":
            await node.fleet.clock.sleep(_WATCH_POLL)
            now, events = current(), []
            for rid, res in now.items():
                old = seen.get(rid)
                if old is None:
                    versions[rid] = 1
                    events.append(
                        state_pb2.Event(event_type=state_pb2.CREATED, resource=res.to_proto())
                    )
                elif old.spec != res.spec:
                    versions[rid] += 1
                    events.append(
                        state_pb2.Event(
                            event_type=state_pb2.UPDATED,
                            resource=res.to_proto(versions[rid]),
                            old=old.to_proto(versions[rid] - 1),
                        )
                    )
            for rid, old in seen.items():
                if rid not in now:
                    events.append(
                        state_pb2.Event(event_type=state_pb2.DESTROYED, resource=old.to_proto())
                    )
            seen = now
            if events:
                await stream.send_message(state_pb2.WatchResponse(event=events))
