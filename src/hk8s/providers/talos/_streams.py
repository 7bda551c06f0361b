"""Streaming Talos calls: kubeconfig, logs, dmesg, events, file reads, etcd snapshots, health.

Streams run on one node (``node`` metadata; apid cannot merge byte streams from several
nodes). Chunks are ``common.Data`` messages; a chunk whose ``metadata.error`` is set carries
the node's failure and becomes an hk8s error.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf import empty_pb2, json_format

from hk8s.errors import PermanentError, TransientAPIError
from hk8s.providers.talos._base import ClientBase
from hk8s.providers.talos._errors import error_for_status
from hk8s.providers.talos._types import TalosEvent
from hk8s.talosapi.cluster import cluster_grpc, cluster_pb2
from hk8s.talosapi.common import common_pb2
from hk8s.talosapi.machine import machine_grpc, machine_pb2

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from google.protobuf.message import Message

__all__ = ["StreamCalls"]

_CHUNK = 1 << 20
# machine.Event.data type URLs are "talos/runtime/<full proto name>"
# (talos internal/app/machined/pkg/runtime/events.go).
_EVENT_TYPE_PREFIX = "talos/runtime/"


class StreamCalls(ClientBase):
    async def _stream(
        self,
        call: str,
        request: Message,
        node: str | None,
        *,
        follow: bool = False,
        timeout: float | None = None,
        service: str = "machine",
    ) -> AsyncIterator[Any]:
        metadata, target = self._one(node)
        stub = (
            machine_grpc.MachineServiceStub
            if service == "machine"
            else cluster_grpc.ClusterServiceStub
        )
        messages = self._transport.server_stream(
            call,
            lambda ch: getattr(stub(ch), call),
            request,
            metadata=metadata,
            target=target,
            timeout=None if follow else (timeout or self._transport.timeout),
        )
        async for message in messages:
            meta = message.metadata
            if meta.error:
                code = meta.status.code if meta.HasField("status") else 2
                who = meta.hostname or target or "endpoint"
                raise error_for_status(
                    code, meta.error, node=who, call=call, insecure=self.insecure
                )
            yield message

    async def _bytes(self, call: str, request: Message, node: str | None, **kw: Any) -> bytes:
        buf = bytearray()
        async for chunk in self._stream(call, request, node, **kw):
            buf += chunk.bytes
        return bytes(buf)

    async def kubeconfig(self, node: str | None = None) -> str:
        """The admin kubeconfig from a control plane node (Talos sends it as a tar.gz)."""
        archive = await self._bytes("Kubeconfig", empty_pb2.Empty(), node)
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                for member in tar:
                    if member.isfile() and Path(member.name).name == "kubeconfig":
                        handle = tar.extractfile(member)
                        if handle is not None:
                            return handle.read().decode()
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, UnicodeDecodeError) as exc:
            raise TransientAPIError(f"Talos Kubeconfig: unreadable archive: {exc}") from exc
        raise PermanentError("Talos Kubeconfig: the archive holds no 'kubeconfig' file")

    async def read(self, path: str, node: str | None = None) -> bytes:
        """A file from the node's filesystem (Talos allows only some paths)."""
        return await self._bytes("Read", machine_pb2.ReadRequest(path=path), node)

    async def logs(
        self,
        service_id: str,
        *,
        kubernetes: bool = False,
        follow: bool = False,
        tail_lines: int = -1,
        node: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Log chunks of a Talos service (``kubernetes=True``: a CRI container id)."""
        request = machine_pb2.LogsRequest(
            namespace="k8s.io" if kubernetes else "system",
            id=service_id,
            driver=common_pb2.CRI if kubernetes else common_pb2.CONTAINERD,
            follow=follow,
            tail_lines=tail_lines,
        )
        async for chunk in self._stream("Logs", request, node, follow=follow):
            yield chunk.bytes

    async def dmesg(
        self, *, follow: bool = False, tail: bool = False, node: str | None = None
    ) -> AsyncIterator[bytes]:
        request = machine_pb2.DmesgRequest(follow=follow, tail=tail)
        async for chunk in self._stream("Dmesg", request, node, follow=follow):
            yield chunk.bytes

    async def events(
        self, *, tail_events: int = 0, with_actor_id: str = "", node: str | None = None
    ) -> AsyncIterator[TalosEvent]:
        """The node's event stream (it never ends: stop reading to stop it)."""
        request = machine_pb2.EventsRequest(tail_events=tail_events, with_actor_id=with_actor_id)
        async for event in self._stream("Events", request, node, follow=True):
            yield _event(event, node or event.metadata.hostname or ",".join(self.nodes))

    async def health_check(
        self,
        control_plane_nodes: list[str],
        worker_nodes: list[str],
        *,
        wait_timeout: float,
        force_endpoint: str = "",
        node: str | None = None,
    ) -> AsyncIterator[str]:
        """Progress lines of the node-side cluster health check (talosctl health --server)."""
        request = cluster_pb2.HealthCheckRequest(
            cluster_info=cluster_pb2.ClusterInfo(
                control_plane_nodes=control_plane_nodes,
                worker_nodes=worker_nodes,
                force_endpoint=force_endpoint,
            )
        )
        request.wait_timeout.FromNanoseconds(int(wait_timeout * 1e9))
        stream = self._stream(
            "HealthCheck",
            request,
            node,
            timeout=wait_timeout + self._transport.timeout,
            service="cluster",
        )
        async for progress in stream:
            yield progress.message

    async def etcd_snapshot(
        self, path: str | Path, *, node: str | None = None, timeout: float | None = None
    ) -> int:
        """Stream an etcd snapshot into ``path`` (0600, complete or not there); returns bytes."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                request = machine_pb2.EtcdSnapshotRequest()
                async for chunk in self._stream("EtcdSnapshot", request, node, timeout=timeout):
                    out.write(chunk.bytes)
                    size += len(chunk.bytes)
            partial.replace(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return size

    async def etcd_recover(
        self, path: str | Path, *, node: str | None = None, timeout: float | None = None
    ) -> None:
        """Upload a snapshot for ``bootstrap(recover_etcd=True)``."""
        source = Path(path)

        def chunks() -> Iterator[common_pb2.Data]:
            with source.open("rb") as handle:
                while block := handle.read(_CHUNK):
                    yield common_pb2.Data(bytes=block)

        metadata, target = self._one(node)
        reply, ep = await self._transport.client_stream(
            "EtcdRecover",
            lambda ch: machine_grpc.MachineServiceStub(ch).EtcdRecover,
            chunks,
            metadata=metadata,
            target=target,
            timeout=timeout or self._transport.timeout,
        )
        for result in self._collect("EtcdRecover", reply.messages, lambda m: None, ep):
            result.unwrap()


def _event(event: machine_pb2.Event, node: str) -> TalosEvent:
    type_name = event.data.type_url.removeprefix(_EVENT_TYPE_PREFIX)
    data: dict[str, Any] = {}
    message_class = getattr(machine_pb2, type_name.removeprefix("machine."), None)
    if type_name.startswith("machine.") and message_class is not None:
        payload = message_class.FromString(event.data.value)
        data = json_format.MessageToDict(payload, preserving_proto_field_name=True)
    return TalosEvent(
        node=event.metadata.hostname or node,
        id=event.id,
        type=type_name,
        data=data,
        actor_id=event.actor_id,
    )
