"""Read-only access to Talos resources over the COSI ``State`` service (talosctl get).

Talos proxies ``/cosi.resource.State/*`` one node at a time (``node`` metadata). Resources
come back with their spec as YAML (``spec.yaml_spec``), which is parsed here, so hk8s needs no
per-type protobuf schema. Namespaces/types are Talos' (``runtime``/``MachineStatuses.runtime
.talos.dev``, ``etcd``/``EtcdMembers.etcd.talos.dev``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from hk8s.providers.talos._base import ClientBase
from hk8s.providers.talos._types import ResourceEvent, TalosResource
from hk8s.talosapi.cosi import resource_pb2, state_grpc, state_pb2

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["ResourceCalls"]

# WatchRequest.api_version 1 adds BOOTSTRAPPED and ERRORED events (cosi state.proto).
_WATCH_API_VERSION = 1


class ResourceCalls(ClientBase):
    async def get_resource(
        self, namespace: str, type_: str, id_: str, *, node: str | None = None
    ) -> TalosResource:
        """One resource; ``NotFoundError`` when it does not exist."""
        metadata, target = self._one(node)
        request = state_pb2.GetRequest(namespace=namespace, type=type_, id=id_)
        reply, _ = await self._transport.unary(
            "State.Get",
            lambda ch: state_grpc.StateStub(ch).Get,
            request,
            metadata=metadata,
            target=target,
        )
        return _resource(reply.resource)

    async def list_resources(
        self, namespace: str, type_: str, *, node: str | None = None
    ) -> list[TalosResource]:
        metadata, target = self._one(node)
        request = state_pb2.ListRequest(namespace=namespace, type=type_)
        stream = self._transport.server_stream(
            "State.List",
            lambda ch: state_grpc.StateStub(ch).List,
            request,
            metadata=metadata,
            target=target,
            timeout=self._transport.timeout,
        )
        return [_resource(item.resource) async for item in stream]

    async def watch(
        self,
        namespace: str,
        type_: str,
        id_: str | None = None,
        *,
        bootstrap: bool = True,
        node: str | None = None,
    ) -> AsyncIterator[ResourceEvent]:
        """Changes to resources of a type (or one resource); with ``bootstrap`` the current
        ones come first as CREATED, then a BOOTSTRAPPED marker. Runs until the caller stops."""
        metadata, target = self._one(node)
        request = state_pb2.WatchRequest(
            namespace=namespace,
            type=type_,
            options=state_pb2.WatchOptions(bootstrap_contents=bootstrap),
            api_version=_WATCH_API_VERSION,
        )
        if id_ is not None:
            request.id = id_
        stream = self._transport.server_stream(
            "State.Watch",
            lambda ch: state_grpc.StateStub(ch).Watch,
            request,
            metadata=metadata,
            target=target,
            timeout=None,
        )
        async for reply in stream:
            for event in reply.event:
                yield ResourceEvent(
                    type=state_pb2.EventType.Name(event.event_type),
                    resource=_resource(event.resource) if event.HasField("resource") else None,
                    old=_resource(event.old) if event.HasField("old") else None,
                    error=event.error,
                )


def _resource(res: resource_pb2.Resource) -> TalosResource:
    meta = res.metadata
    spec = yaml.safe_load(res.spec.yaml_spec) if res.spec.yaml_spec else None
    return TalosResource(
        namespace=meta.namespace,
        type=meta.type,
        id=meta.id,
        version=meta.version,
        phase=meta.phase,
        labels=dict(meta.labels),
        annotations=dict(meta.annotations),
        spec=spec,
    )
