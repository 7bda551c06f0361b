"""``TalosClient``: the Talos machine API as hk8s uses it, over grpclib (asyncio).

Calls that apid can fan out return ``list[NodeResult[T]]``, one entry per node (see
``_base``). Streaming calls, COSI resources and etcd snapshots are in ``_streams`` and
``_resources``.

>>> async with TalosClient(["10.0.1.2"], insecure=True) as maint:          # maintenance mode
...     await maint.apply_configuration(config_yaml, ApplyMode.AUTO)
>>> async with TalosClient(["10.0.1.2"], credentials=creds, nodes=["10.0.1.3"]) as talos:
...     [r.unwrap().tag for r in await talos.version()]
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from google.protobuf import empty_pb2

from hk8s.errors import ConflictError, Hk8sError, PermanentError, TransientAPIError, UsageError
from hk8s.model import changes
from hk8s.pki import Talosconfig, load_talosconfig
from hk8s.providers.talos._resources import ResourceCalls
from hk8s.providers.talos._streams import StreamCalls
from hk8s.providers.talos._tls import TalosCredentials
from hk8s.providers.talos._types import (
    ApplyMode,
    ApplyResult,
    BootstrapOutcome,
    Disk,
    EtcdMember,
    EtcdMemberStatus,
    NodeResult,
    RebootMode,
    ResetWipeMode,
    ServiceStatus,
    VersionInfo,
)
from hk8s.talosapi.machine import machine_grpc, machine_pb2
from hk8s.talosapi.storage import storage_grpc, storage_pb2

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping

    from grpclib.client import Channel

    from hk8s.model import Clock, Timing

__all__ = ["TalosClient"]

_APPLY_MODES = {
    ApplyMode.REBOOT: machine_pb2.ApplyConfigurationRequest.REBOOT,
    ApplyMode.AUTO: machine_pb2.ApplyConfigurationRequest.AUTO,
    ApplyMode.NO_REBOOT: machine_pb2.ApplyConfigurationRequest.NO_REBOOT,
    ApplyMode.STAGED: machine_pb2.ApplyConfigurationRequest.STAGED,
    ApplyMode.TRY: machine_pb2.ApplyConfigurationRequest.TRY,
}
_APPLY_MODES_BACK = {v: k for k, v in _APPLY_MODES.items()}
_REBOOT_MODES = {
    RebootMode.DEFAULT: machine_pb2.RebootRequest.DEFAULT,
    RebootMode.POWERCYCLE: machine_pb2.RebootRequest.POWERCYCLE,
    RebootMode.FORCE: machine_pb2.RebootRequest.FORCE,
}
_WIPE_MODES = {
    ResetWipeMode.ALL: machine_pb2.ResetRequest.ALL,
    ResetWipeMode.SYSTEM_DISK: machine_pb2.ResetRequest.SYSTEM_DISK,
    ResetWipeMode.USER_DISKS: machine_pb2.ResetRequest.USER_DISKS,
}


# The MachineService calls that change a node (the rest only read).
_MUTATING = frozenset(
    {
        "ApplyConfiguration",
        "Bootstrap",
        "Upgrade",
        "Reboot",
        "Reset",
        "Shutdown",
        "ServiceRestart",
        "EtcdRemoveMemberByID",
        "EtcdLeaveCluster",
        "EtcdForfeitLeadership",
    }
)


def _machine(name: str) -> Callable[[Channel], Any]:
    return lambda channel: getattr(machine_grpc.MachineServiceStub(channel), name)


def _actor(message: Any) -> str:
    return str(message.actor_id)


class TalosClient(StreamCalls, ResourceCalls):
    """An async Talos API client: endpoints to dial, optional ``nodes`` to run calls on.

    Use ``credentials`` (mTLS, pinned to the cluster CA) for a configured node and
    ``insecure=True`` for a node in maintenance mode. Every call has a deadline of
    ``timing.request_timeout``; calls are retried with backoff while the node is unavailable.
    """

    @classmethod
    def from_talosconfig(
        cls,
        config: Talosconfig | str | os.PathLike[str],
        *,
        context: str | None = None,
        timing: Timing | None = None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> TalosClient:
        """A client for a talosconfig context (a parsed one, or a file as talosctl reads it),
        with its endpoints, nodes and identity."""
        if not isinstance(config, Talosconfig):
            config = load_talosconfig(config, context)
        if not config.endpoints:
            raise UsageError(
                f"talosconfig context {config.context!r} has no endpoints",
                hint="hk8s talosconfig writes one with the cluster's endpoints",
            )
        return cls(
            config.endpoints,
            credentials=TalosCredentials.from_talosconfig(config),
            nodes=config.nodes,
            timing=timing,
            clock=clock,
            environ=environ,
        )

    async def _unary(
        self, call: str, request: object, timeout: float | None = None
    ) -> tuple[Any, Any]:
        metadata, target = self._fanout()
        try:
            return await self._transport.unary(
                call, _machine(call), request, metadata=metadata, target=target, timeout=timeout
            )
        finally:
            # Counted answered or not: a call that timed out may still have been applied.
            if call in _MUTATING and not getattr(request, "dry_run", False):
                changes.record("talos")

    async def apply_configuration(
        self, data: bytes, mode: ApplyMode = ApplyMode.AUTO, *, dry_run: bool = False
    ) -> list[NodeResult[ApplyResult]]:
        """Send a machine config; each node says which mode it actually applied it with."""
        request = machine_pb2.ApplyConfigurationRequest(
            data=data, mode=_APPLY_MODES[mode], dry_run=dry_run
        )
        reply, ep = await self._unary("ApplyConfiguration", request)
        return self._collect(
            "ApplyConfiguration",
            reply.messages,
            lambda m: ApplyResult(
                mode=_APPLY_MODES_BACK.get(m.mode, mode),
                details=m.mode_details,
                warnings=tuple(m.warnings),
            ),
            ep,
        )

    async def bootstrap(self, *, recover_etcd: bool = False) -> BootstrapOutcome:
        """Bootstrap etcd on the (single) target node; idempotent, see ``BootstrapOutcome``."""
        metadata, target = self._one(None)
        request = machine_pb2.BootstrapRequest(recover_etcd=recover_etcd)
        try:
            reply, ep = await self._transport.unary(
                "Bootstrap", _machine("Bootstrap"), request, metadata=metadata, target=target
            )
            for result in self._collect("Bootstrap", reply.messages, lambda m: None, ep):
                result.unwrap()
        except ConflictError as exc:
            # Talos: status.Error(codes.AlreadyExists, "etcd data directory is not empty")
            if exc.context.get("grpc_status") == "ALREADY_EXISTS":
                return BootstrapOutcome.ALREADY_BOOTSTRAPPED
            # A freshly booted node answers FailedPrecondition until CRI is up ("bootstrap is
            # not available yet") and its clock is in sync ("time is not in sync yet");
            # upstream's own bootstrap (pkg/cluster/bootstrap.go) retries it, and so do we.
            # Recovery's "etcd snapshot hasn't been uploaded" is the caller's mistake.
            if exc.context.get("grpc_status") == "FAILED_PRECONDITION" and not recover_etcd:
                raise TransientAPIError(
                    exc.message, hint="the node is still starting", **exc.context
                ) from exc
            changes.record("talos")
            raise
        except Exception:
            changes.record("talos")
            raise
        changes.record("talos")
        return BootstrapOutcome.STARTED

    async def version(self) -> list[NodeResult[VersionInfo]]:
        reply, ep = await self._unary("Version", empty_pb2.Empty())
        return self._collect("Version", reply.messages, _version_info, ep)

    async def upgrade(
        self, image: str, *, preserve: bool = False, stage: bool = False, force: bool = False
    ) -> list[NodeResult[str]]:
        """Start an upgrade to the installer ``image``; the value is Talos' acknowledgement.

        Talos pulls and test-runs the installer inside the call, so it gets
        ``Timing.upgrade_call_timeout``, not a request's. An installer that does not exist is
        permanent; other failures (timeouts, "failed to acquire upgrade mutex") keep their
        class: the caller asks the node whether the upgrade started before trying again."""
        request = machine_pb2.UpgradeRequest(
            image=image, preserve=preserve, stage=stage, force=force
        )
        timeout = self._transport.timing.upgrade_call_timeout
        try:
            reply, ep = await self._unary("Upgrade", request, timeout)
        except Hk8sError as exc:
            err = _installer_error(exc, image)
            if err is exc:
                raise
            raise err from exc
        results = self._collect("Upgrade", reply.messages, lambda m: str(m.ack), ep)
        return [
            replace(r, error=_installer_error(r.error, image)) if r.error else r for r in results
        ]

    async def reboot(self, mode: RebootMode = RebootMode.DEFAULT) -> list[NodeResult[str]]:
        """Reboot; the value is the actor id Talos tags the reboot's events with."""
        reply, ep = await self._unary("Reboot", machine_pb2.RebootRequest(mode=_REBOOT_MODES[mode]))
        return self._collect("Reboot", reply.messages, _actor, ep)

    async def reset(
        self,
        *,
        graceful: bool = True,
        reboot: bool = False,
        mode: ResetWipeMode = ResetWipeMode.ALL,
        system_partitions: dict[str, bool] | None = None,
        user_disks: tuple[str, ...] = (),
    ) -> list[NodeResult[str]]:
        """Wipe the node (graceful: leave etcd first); ``system_partitions`` maps a partition
        label (STATE, EPHEMERAL, ...) to whether to wipe it; none means all."""
        request = machine_pb2.ResetRequest(
            graceful=graceful,
            reboot=reboot,
            mode=_WIPE_MODES[mode],
            system_partitions_to_wipe=[
                machine_pb2.ResetPartitionSpec(label=label, wipe=wipe)
                for label, wipe in (system_partitions or {}).items()
            ],
            user_disks_to_wipe=list(user_disks),
        )
        reply, ep = await self._unary("Reset", request)
        return self._collect("Reset", reply.messages, _actor, ep)

    async def shutdown(self, *, force: bool = False) -> list[NodeResult[str]]:
        reply, ep = await self._unary("Shutdown", machine_pb2.ShutdownRequest(force=force))
        return self._collect("Shutdown", reply.messages, _actor, ep)

    async def service_list(self) -> list[NodeResult[list[ServiceStatus]]]:
        reply, ep = await self._unary("ServiceList", empty_pb2.Empty())
        return self._collect(
            "ServiceList", reply.messages, lambda m: [_service(s) for s in m.services], ep
        )

    async def service_restart(self, service_id: str) -> list[NodeResult[str]]:
        request = machine_pb2.ServiceRestartRequest(id=service_id)
        reply, ep = await self._unary("ServiceRestart", request)
        return self._collect("ServiceRestart", reply.messages, lambda m: str(m.resp), ep)

    async def etcd_member_list(
        self, *, query_local: bool = False
    ) -> list[NodeResult[list[EtcdMember]]]:
        request = machine_pb2.EtcdMemberListRequest(query_local=query_local)
        reply, ep = await self._unary("EtcdMemberList", request)
        return self._collect(
            "EtcdMemberList", reply.messages, lambda m: [_member(x) for x in m.members], ep
        )

    async def etcd_remove_member_by_id(self, member_id: int) -> list[NodeResult[None]]:
        """Remove a member whose node is gone (for a live node use ``etcd_leave_cluster``)."""
        request = machine_pb2.EtcdRemoveMemberByIDRequest(member_id=member_id)
        reply, ep = await self._unary("EtcdRemoveMemberByID", request)
        return self._collect("EtcdRemoveMemberByID", reply.messages, lambda m: None, ep)

    async def etcd_leave_cluster(self) -> list[NodeResult[None]]:
        reply, ep = await self._unary("EtcdLeaveCluster", machine_pb2.EtcdLeaveClusterRequest())
        return self._collect("EtcdLeaveCluster", reply.messages, lambda m: None, ep)

    async def etcd_forfeit_leadership(self) -> list[NodeResult[str]]:
        """Hand leadership away; the value is the member that was leader ("" if not this)."""
        request = machine_pb2.EtcdForfeitLeadershipRequest()
        reply, ep = await self._unary("EtcdForfeitLeadership", request)
        return self._collect("EtcdForfeitLeadership", reply.messages, lambda m: str(m.member), ep)

    async def etcd_status(self) -> list[NodeResult[EtcdMemberStatus]]:
        reply, ep = await self._unary("EtcdStatus", empty_pb2.Empty())
        return self._collect("EtcdStatus", reply.messages, _etcd_status, ep)

    async def disks(self) -> list[NodeResult[list[Disk]]]:
        metadata, target = self._fanout()
        reply, ep = await self._transport.unary(
            "Disks",
            lambda ch: storage_grpc.StorageServiceStub(ch).Disks,
            empty_pb2.Empty(),
            metadata=metadata,
            target=target,
        )
        return self._collect("Disks", reply.messages, lambda m: [_disk(d) for d in m.disks], ep)


def _installer_error(error: Hk8sError, image: str) -> Hk8sError:
    """An Upgrade error naming an installer the registry does not have is permanent
    (``error validating installer image "...": ... not found`` from Talos'
    PullAndValidateInstallerImage); any other error is returned as it is."""
    message = error.message
    if "error validating installer image" not in message or not any(
        word in message for word in ("not found", "manifest unknown")
    ):
        return error
    return PermanentError(
        message,
        hint=f"check that {image} exists: the Image Factory must know the Talos version "
        "and the schematic",
        **error.context,
    )


def _version_info(m: machine_pb2.Version) -> VersionInfo:
    v = m.version
    return VersionInfo(
        tag=v.tag,
        sha=v.sha,
        built=v.built,
        go_version=v.go_version,
        os=v.os,
        arch=v.arch,
        platform=m.platform.name,
        platform_mode=m.platform.mode,
        rbac=m.features.rbac,
    )


def _service(s: machine_pb2.ServiceInfo) -> ServiceStatus:
    healthy = None if s.health.unknown or not s.HasField("health") else s.health.healthy
    return ServiceStatus(id=s.id, state=s.state, healthy=healthy, message=s.health.last_message)


def _member(m: machine_pb2.EtcdMember) -> EtcdMember:
    return EtcdMember(
        id=m.id,
        hostname=m.hostname,
        peer_urls=tuple(m.peer_urls),
        client_urls=tuple(m.client_urls),
        is_learner=m.is_learner,
    )


def _etcd_status(m: machine_pb2.EtcdStatus) -> EtcdMemberStatus:
    s = m.member_status
    return EtcdMemberStatus(
        member_id=s.member_id,
        leader=s.leader,
        db_size=s.db_size,
        db_size_in_use=s.db_size_in_use,
        raft_index=s.raft_index,
        raft_term=s.raft_term,
        raft_applied_index=s.raft_applied_index,
        protocol_version=s.protocol_version,
        storage_version=s.storage_version,
        is_learner=s.is_learner,
        errors=tuple(s.errors),
    )


def _disk(d: storage_pb2.Disk) -> Disk:
    return Disk(
        device_name=d.device_name,
        size=d.size,
        model=d.model,
        serial=d.serial,
        type=storage_pb2.Disk.DiskType.Name(d.type),
        system_disk=d.system_disk,
        readonly=d.readonly,
    )
