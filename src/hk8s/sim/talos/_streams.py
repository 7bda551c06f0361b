"""Server-streaming calls of one node: Kubeconfig, Events, Logs, Dmesg, Read, EtcdSnapshot.

``EtcdSnapshot`` streams a real etcd 3.5 snapshot (a bbolt database with etcd's buckets and the
SHA-256 trailer, ``hk8s.model.etcd_snapshot``): the ``key`` bucket holds the cluster's
Kubernetes objects at their resourceVersions, ``members`` the etcd members.

Talos streams file-like answers as ``common.Data`` chunks; ``Kubeconfig`` is a tar.gz holding
one file named ``kubeconfig`` (v1alpha1_server.go: "wrap in .tar.gz to match Copy protocol"),
generated from the cluster's Kubernetes CA for the cluster endpoint, as Talos does.
"""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time
from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hk8s.model.etcd_snapshot import SnapshotMember, build_snapshot
from hk8s.pki import CertAndKey, generate_admin_kubeconfig
from hk8s.sim.talos._api import MAINTENANCE_UNIMPLEMENTED
from hk8s.talosapi.common import common_pb2

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hk8s.sim.talos._config import MachineConfig
    from hk8s.sim.talos._node import TalosNode

__all__ = ["NodeStreams"]

_CHUNK = 64 * 1024


def _data(blob: bytes) -> list[common_pb2.Data]:
    return [common_pb2.Data(bytes=blob[i : i + _CHUNK]) for i in range(0, len(blob), _CHUNK)] or [
        common_pb2.Data(bytes=b"")
    ]


class NodeStreams:
    def __init__(self, node: TalosNode) -> None:
        self.node = node

    def _config(self) -> MachineConfig:
        config = self.node.config
        if config is None:
            raise GRPCError(Status.UNIMPLEMENTED, MAINTENANCE_UNIMPLEMENTED)
        return config

    async def kubeconfig(self, req: Any) -> AsyncIterator[common_pb2.Data]:
        config = self._config()
        if not config.control_plane:
            raise GRPCError(
                Status.UNIMPLEMENTED, "kubeconfig is only available on control plane nodes"
            )
        if config.k8s_ca_crt is None or config.k8s_ca_key is None:
            raise GRPCError(Status.FAILED_PRECONDITION, "k8s API server CA config is not set")
        ca = CertAndKey.from_pem(config.k8s_ca_crt, config.k8s_ca_key)
        name = config.cluster_name or "talos"
        text = generate_admin_kubeconfig(name, ca, config.endpoint, now=dt.datetime.now(dt.UTC))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("kubeconfig")
            info.size, info.mode, info.mtime = len(text.encode()), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(text.encode()))
        for chunk in _data(buffer.getvalue()):
            yield chunk

    async def events(self, req: Any) -> AsyncIterator[Any]:
        node = self.node
        tail = req.tail_events
        history = list(node.events) if tail < 0 else node.events[-tail:] if tail else []
        for event in history:
            if not req.with_actor_id or event.actor_id == req.with_actor_id:
                yield event
        seen = len(node.events)
        while node.phase != "off":
            signal = node.event_signal
            await signal.wait()
            fresh, seen = node.events[seen:], len(node.events)
            for event in fresh:
                if not req.with_actor_id or event.actor_id == req.with_actor_id:
                    yield event

    async def logs(self, req: Any) -> AsyncIterator[common_pb2.Data]:
        self._config()
        node = self.node
        if req.id not in node.services:
            raise GRPCError(Status.NOT_FOUND, f"log {req.id!r} not found")
        state = node.services[req.id][0]
        lines = [
            f"[talos] service[{req.id}](Preparing): Running pre state",
            f"[talos] service[{req.id}](Waiting): Waiting for service dependencies",
            f"[talos] service[{req.id}]({state}): Started task {req.id} (PID 1234)",
        ]
        if req.tail_lines > 0:
            lines = lines[-req.tail_lines :]
        yield common_pb2.Data(bytes=("\n".join(lines) + "\n").encode())

    async def dmesg(self, req: Any) -> AsyncIterator[common_pb2.Data]:
        self._config()
        node = self.node
        text = (
            f"kern: info: [0.000000] Linux version 6.12.57-talos ({node.disk.image.arch})\n"
            f"user: warning: [5.000000] [talos] talosctl: {node.disk.version} booted\n"
            f"user: warning: [6.000000] [talos] setting hostname: {node.hostname}\n"
        )
        yield common_pb2.Data(bytes=text.encode())

    async def read(self, req: Any) -> AsyncIterator[common_pb2.Data]:
        config = self._config()
        node = self.node
        files = {
            "/etc/os-release": f'NAME="Talos"\nID=talos\nVERSION_ID={node.disk.version}\n',
            "/proc/sys/kernel/hostname": f"{node.hostname}\n",
            "/system/state/config.yaml": config.raw.decode(),
        }
        if req.path not in files:
            raise GRPCError(Status.UNKNOWN, f"open {req.path}: no such file or directory")
        for chunk in _data(files[req.path].encode()):
            yield chunk

    async def etcd_snapshot(self, req: Any) -> AsyncIterator[common_pb2.Data]:
        config = self._config()
        cluster = self.node.cluster
        if not config.control_plane or cluster is None:
            raise GRPCError(
                Status.UNIMPLEMENTED, "etcd snapshot is only available on control plane nodes"
            )
        member = cluster.member_for(self.node.ip)
        if member is None or not member.started:
            raise GRPCError(Status.UNKNOWN, "failed to create etcd client: etcd is not running")
        members = [
            SnapshotMember(m.id, m.hostname, tuple(m.peer_urls)) for m in cluster.members.values()
        ]
        keys = cluster.keyspace() if cluster.keyspace is not None else []
        blob = build_snapshot(
            keys, members=members, consistent_index=cluster.raft_index, term=cluster.raft_term
        )
        for chunk in _data(blob):
            yield chunk
