"""What one node answers to each Machine/Storage API call (before apid's aggregation).

Each function takes the node, the request and the caller's roles, and returns the per-node
message (``machine.Version``, ``machine.EtcdMembers``, ...) or raises ``GRPCError`` with the
status Talos uses (``internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go``,
``internal/app/maintenance/server.go`` before v1.14, ``internal/app/internal/machinehelper``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hk8s.model.etcd_snapshot import snapshot_keys
from hk8s.sim.talos._cluster import ETCD_VERSION, EtcdError
from hk8s.sim.talos._config import ConfigRejected, parse_machine_config
from hk8s.sim.talos._immediate import can_apply_immediately
from hk8s.sim.talos._installer import platform_of_image, schematic_of_image, version_of_image
from hk8s.talosapi.machine import machine_pb2
from hk8s.talosapi.storage import storage_pb2

if TYPE_CHECKING:
    from hk8s.sim.talos._cluster import TalosCluster
    from hk8s.sim.talos._config import MachineConfig
    from hk8s.sim.talos._node import TalosNode

__all__ = ["MAINTENANCE_UNIMPLEMENTED", "NodeCalls", "preserve_skips_etcd_checks"]

Apply = machine_pb2.ApplyConfigurationRequest
MAINTENANCE_UNIMPLEMENTED = "API is not implemented in maintenance mode"


def preserve_skips_etcd_checks(version: str) -> bool:
    """Whether ``preserve`` switches off the etcd upgrade lock and ValidateForUpgrade on this
    release: v1alpha1_server.go Upgrade has ``&& !in.GetPreserve()`` from v1.12.9 and v1.13.4
    on (not in v1.11.x, v1.12.0-8, v1.13.0-3)."""
    match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        return False
    major, minor, patch = (int(g) for g in match.groups())
    if (major, minor) == (1, 12):
        return patch >= 9
    if (major, minor) == (1, 13):
        return patch >= 4
    return (major, minor) > (1, 13)


def _validate_etcd_for_upgrade(cluster: TalosCluster) -> None:
    """tryLockUpgradeMutex + etcd.Client.ValidateForUpgrade (internal/pkg/etcd/etcd.go)."""
    if not cluster.quorum():
        raise GRPCError(
            Status.UNKNOWN,
            "failed to acquire upgrade mutex: error trying to lock etcd upgrade mutex: "
            "etcdserver: no leader",
        )
    members = list(cluster.members.values())
    if len(members) == 2:
        raise GRPCError(
            Status.UNKNOWN,
            "error validating etcd for upgrade: etcd member count(2) is insufficient to "
            "maintain quorum if upgrade commences",
        )
    for member in members:
        if not member.started:
            raise GRPCError(
                Status.UNKNOWN,
                f"error validating etcd for upgrade: etcd member {member.id:016x} is not "
                "healthy; all members must be healthy to perform an upgrade: context "
                "deadline exceeded",
            )


def _etcd(exc: EtcdError) -> GRPCError:
    return GRPCError(Status[exc.code], exc.message)


class NodeCalls:
    """The machine API of one node; ``maintenance`` mode serves only a few calls."""

    def __init__(self, node: TalosNode) -> None:
        self.node = node

    # ------------------------------------------------------------------ helpers
    def _config(self) -> MachineConfig:
        config = self.node.config
        if config is None:
            raise GRPCError(Status.UNIMPLEMENTED, MAINTENANCE_UNIMPLEMENTED)
        return config

    def _control_plane(self, api: str) -> tuple[MachineConfig, TalosCluster]:
        # machinehelper.CheckControlplane
        config = self._config()
        if not config.control_plane:
            raise GRPCError(Status.UNIMPLEMENTED, f"{api} is only available on control plane nodes")
        cluster = self.node.cluster
        assert cluster is not None
        return config, cluster

    # ------------------------------------------------------------------ configuration
    async def apply_configuration(self, req: Any) -> machine_pb2.ApplyConfiguration:
        node = self.node
        # maintenance/server.go: only TRY, REBOOT and AUTO; the node installs and reboots.
        if node.maintenance and req.mode not in (Apply.TRY, Apply.REBOOT, Apply.AUTO):
            name = Apply.Mode.Name(req.mode).lower().replace("_", "-")
            raise GRPCError(
                Status.UNIMPLEMENTED,
                f"apply configuration --mode='{name}' is not supported in maintenance mode",
            )
        config = self._parse(req.data)
        if node.maintenance:
            reply = machine_pb2.ApplyConfiguration(mode=Apply.REBOOT)
            if req.dry_run:
                reply.mode_details = (
                    "Dry run summary:\nNode is running in maintenance mode and does not have a "
                    "config yet."
                )
                return reply
            if node.fleet.faults.stuck(node.server_name):
                return reply  # the fault: accepted, but the node never leaves maintenance
            node.disk.config = config
            reply.mode_details = "Applied configuration with a reboot"
            node.after_reply(self._install)
            return reply
        return self._apply_running(config, req)

    def _parse(self, data: bytes) -> MachineConfig:
        try:
            return parse_machine_config(data, self.node.disk.version)
        except ConfigRejected as exc:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"configuration validation failed: {exc}"
            ) from None

    async def _install(self) -> None:
        node = self.node
        await node.fleet.clock.sleep(node.fleet.timings.install)
        await node.reboot()

    def _apply_running(self, config: MachineConfig, req: Any) -> machine_pb2.ApplyConfiguration:
        node, current = self.node, self._config()
        if config.type != current.type:
            raise GRPCError(Status.INVALID_ARGUMENT, "machine type can't be changed")
        live = can_apply_immediately(current.raw, config.raw)
        mode = req.mode
        if mode == Apply.AUTO:
            mode = Apply.NO_REBOOT if live else Apply.REBOOT
        if mode in (Apply.NO_REBOOT, Apply.TRY) and not live:
            raise GRPCError(
                Status.INVALID_ARGUMENT, "this config change can't be applied in immediate mode"
            )
        reply = machine_pb2.ApplyConfiguration(mode=mode)
        if req.dry_run:
            reply.mode_details = "Dry run summary:\nApplied configuration (dry run)"
            return reply
        if mode == Apply.STAGED:
            node.disk.staged = config
            reply.mode_details = "Staged configuration to be applied after the next reboot"
        elif mode == Apply.REBOOT:
            node.disk.config = config
            node.after_reply(node.reboot)
            reply.mode_details = "Applied configuration with a reboot"
        else:
            previous = node.disk.config
            node.disk.config = config
            if mode == Apply.TRY:
                node.spawn(self._revert_later(previous, req))
            node.spawn(self._relabel())
            reply.mode_details = "Applied configuration without a reboot"
        return reply

    async def _revert_later(self, previous: MachineConfig | None, req: Any) -> None:
        timeout = req.try_mode_timeout.ToTimedelta().total_seconds() or None
        await self.node.fleet.clock.sleep(timeout or self.node.fleet.timings.try_timeout)
        self.node.disk.config = previous
        await self._relabel()

    async def _relabel(self) -> None:
        node, cluster = self.node, self.node.cluster
        if node.kubelet_registered and cluster is not None:
            await node.fleet.hooks.kubelet(cluster, node.kubelet_info(), True)

    # ------------------------------------------------------------------------ version
    def _readable(self) -> None:
        """Reader calls: a configured node; in maintenance mode only from 1.13 on (apid with
        the Reader role; before, maintenance/server.go assertAdminRole -> Unimplemented)."""
        if not (self.node.maintenance and self.node.apid_in_maintenance):
            self._config()

    async def version(self, req: Any) -> machine_pb2.Version:
        self._readable()
        image = self.node.disk.image
        return machine_pb2.Version(
            version=machine_pb2.VersionInfo(
                tag=image.version,
                sha=image.schematic[:8],
                built="",
                go_version="go1.24.9",
                os="linux",
                arch=image.arch,
            ),
            platform=machine_pb2.PlatformInfo(
                name=self.node.disk.platform,
                mode="metal" if self.node.disk.platform == "metal" else "cloud",
            ),
            # v1alpha1_server.go Version: features only once the node has a config.
            features=machine_pb2.FeaturesInfo(rbac=True) if self.node.config else None,
        )

    async def disks(self, req: Any) -> storage_pb2.Disks:
        node = self.node
        disk = storage_pb2.Disk(
            size=node.disk_size,
            model="QEMU HARDDISK",
            device_name="sda",
            name="sda",
            serial=f"{node.server_id}",
            type=storage_pb2.Disk.SSD,
            bus_path="/pci0000:00/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:0",
            system_disk=node.disk.config is not None,
            subsystem="/sys/class/block",
        )
        return storage_pb2.Disks(disks=[disk])

    async def service_list(self, req: Any) -> machine_pb2.ServiceList:
        self._readable()
        infos = []
        for name, (state, healthy, message) in sorted(self.node.services.items()):
            health = machine_pb2.ServiceHealth(
                unknown=healthy is None, healthy=bool(healthy), last_message=message
            )
            infos.append(machine_pb2.ServiceInfo(id=name, state=state, health=health))
        return machine_pb2.ServiceList(services=infos)

    async def service_restart(self, req: Any) -> machine_pb2.ServiceRestart:
        self._config()
        if req.id not in self.node.services:
            raise GRPCError(Status.NOT_FOUND, f"service {req.id!r} not found")
        return machine_pb2.ServiceRestart(resp=f"Service {req.id!r} restarted")

    # ---------------------------------------------------------------------- lifecycle
    async def bootstrap(self, req: Any) -> machine_pb2.Bootstrap:
        # v1alpha1_server.go Bootstrap: CRI must be up (IsBootstrapAllowed), then the node's
        # clock in sync (waited for 5 s), before the etcd data directory is even looked at.
        node = self.node
        up_for = node.fleet.clock.now() - node.configured_at
        if node.config is not None and up_for < node.fleet.timings.cri:
            raise GRPCError(Status.FAILED_PRECONDITION, "bootstrap is not available yet")
        config, cluster = self._control_plane("bootstrap")
        if up_for < node.fleet.timings.time_sync:
            raise GRPCError(Status.FAILED_PRECONDITION, "time is not in sync yet")
        if not config.etcd_ca:
            raise GRPCError(
                Status.INVALID_ARGUMENT, "etcd is not configured, bootstrap is not possible"
            )
        if node.disk.etcd_data or cluster.bootstrapped:
            raise GRPCError(Status.ALREADY_EXISTS, "etcd data directory is not empty")
        if req.recover_etcd and node.recovery_snapshot is None:
            raise GRPCError(Status.FAILED_PRECONDITION, "etcd snapshot hasn't been uploaded")
        node.disk.etcd_data = True  # a second Bootstrap meanwhile: ALREADY_EXISTS
        snapshot, node.recovery_snapshot = node.recovery_snapshot, None
        if req.recover_etcd and snapshot is not None:
            # talosctl bootstrap --recover-from: etcd starts from the uploaded snapshot. Talos
            # runs its bootstrap sequence after the reply; restoring the keyspace takes a
            # request per key, which must not hold up the reply or the world's loop. etcd
            # serves (and so has a member others can join) only once the restore is done.
            node.services["etcd"] = ("Preparing", None, "Restoring the etcd snapshot")
            node.fleet.spawn(self._recover(cluster, snapshot))
            return machine_pb2.Bootstrap()
        self._etcd_running(cluster)
        return machine_pb2.Bootstrap()

    async def _recover(self, cluster: TalosCluster, snapshot: bytes) -> None:
        if cluster.restore_keyspace is not None:
            await cluster.restore_keyspace(snapshot_keys(snapshot))
        self._etcd_running(cluster)

    def _etcd_running(self, cluster: TalosCluster) -> None:
        node = self.node
        cluster.bootstrap(node.hostname, node.ip, node.etcd_address())
        node.services["etcd"] = ("Running", True, "")
        node.emit_service("etcd", machine_pb2.ServiceStateEvent.RUNNING)
        node.fleet.spawn(node.fleet.start_kube_api(cluster))

    async def reboot(self, req: Any) -> machine_pb2.Reboot:
        self._config()
        actor = self.node.start_action("reboot")
        self.node.after_reply(self.node.reboot)
        return machine_pb2.Reboot(actor_id=actor)

    async def shutdown(self, req: Any) -> machine_pb2.Shutdown:
        self._config()
        actor = self.node.start_action("shutdown")
        self.node.after_reply(self.node.shutdown)
        return machine_pb2.Shutdown(actor_id=actor)

    async def upgrade(self, req: Any) -> machine_pb2.Upgrade:
        # v1alpha1_server.go Upgrade: pull and validate the installer inside the call, then
        # (control planes) the etcd upgrade lock and ValidateForUpgrade, then act after replying.
        config = self._config()
        node = self.node
        version = version_of_image(req.image)
        if version is None:
            raise GRPCError(
                Status.UNKNOWN, f"error validating installer image {req.image!r}: no version tag"
            )
        await self._pull_installer(req.image, version)
        cluster = node.cluster
        etcd = config.control_plane and cluster is not None and cluster.bootstrapped
        skipped = req.force or (req.preserve and preserve_skips_etcd_checks(node.disk.version))
        if etcd and cluster is not None and not skipped:
            _validate_etcd_for_upgrade(cluster)
        actor = node.start_action("upgrade")
        node.after_reply(lambda: self._upgrade(version, req.image))
        return machine_pb2.Upgrade(ack="Upgrade request received", actor_id=actor)

    async def _pull_installer(self, image: str, version: str) -> None:
        """install.PullAndValidateInstallerImage: the Image Factory builds an installer on
        its first request (``installer_build``), every pull takes ``installer_pull``."""
        fleet = self.node.fleet
        seconds = fleet.timings.installer_pull
        if image not in fleet.pulled:
            seconds += fleet.timings.installer_build
        await fleet.clock.sleep(seconds)
        if version not in fleet.versions:
            raise GRPCError(
                Status.UNKNOWN,
                f'error validating installer image "{image}": failed to pull image "{image}": '
                f"{image}: not found",
            )
        fleet.pulled.add(image)

    async def _upgrade(self, version: str, image: str) -> None:
        node = self.node
        await node.fleet.clock.sleep(node.fleet.timings.upgrade)
        if node.fleet.faults.fails_upgrade(node.server_name):
            await node.reboot()  # the new release fails to boot; the bootloader falls back
            return

        schematic = schematic_of_image(image) or node.disk.image.schematic
        platform = platform_of_image(image)

        def switch() -> None:
            node.disk.image = replace(node.disk.image, version=version, schematic=schematic)
            # The installer's UKI names its platform; GRUB boots that command line.
            node.disk.platform = platform

        await node.reboot(then=switch)

    async def reset(self, req: Any) -> machine_pb2.Reset:
        config = self._config()
        node = self.node
        if req.user_disks_to_wipe and req.mode == machine_pb2.ResetRequest.SYSTEM_DISK:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                "reset failed: invalid input, wipe mode SYSTEM_DISK doesn't support "
                "UserDisksToWipe parameter",
            )
        cluster = node.cluster
        if req.graceful and config.control_plane and cluster is not None:
            member = cluster.member_for(node.ip)
            if member is not None:
                try:
                    cluster.remove(member.id)
                except EtcdError as exc:
                    raise GRPCError(
                        Status.FAILED_PRECONDITION, f"failed to leave etcd: {exc.message}"
                    ) from None
        labels = {p.label for p in req.system_partitions_to_wipe if p.wipe}
        # No partitions named: everything. STATE holds the machine config, EPHEMERAL
        # /var (etcd's data directory): Talos' disaster recovery wipes only EPHEMERAL.
        wipe_state = not req.system_partitions_to_wipe or "STATE" in labels
        wipe_etcd = not req.system_partitions_to_wipe or "EPHEMERAL" in labels

        async def run() -> None:
            await node._go_down("resetting", machine_pb2.MachineStatusEvent.RESETTING)
            await node.fleet.clock.sleep(node.fleet.timings.reset)
            if wipe_state:
                node.disk.config, node.disk.staged = None, None
            if wipe_etcd and node.disk.etcd_data:
                node.disk.etcd_data = False
                if cluster is not None:
                    cluster.data_wiped(node.ip)
            if req.reboot:
                await node.boot()
            else:
                await node.shutdown()

        actor = node.start_action("reset")
        node.after_reply(run)
        return machine_pb2.Reset(actor_id=actor)

    # --------------------------------------------------------------------------- etcd
    async def etcd_member_list(self, req: Any) -> machine_pb2.EtcdMembers:
        _, cluster = self._control_plane("etcd members")
        try:
            cluster.require_quorum()
        except EtcdError as exc:
            raise _etcd(exc) from None
        if req.query_local and cluster.member_for(self.node.ip) is None:
            raise GRPCError(Status.UNKNOWN, "etcd is not running on this node")
        members = [
            machine_pb2.EtcdMember(
                id=m.id,
                hostname=m.hostname,
                peer_urls=m.peer_urls,
                client_urls=m.client_urls if m.started else [],
                is_learner=m.learner,
            )
            for m in cluster.members.values()
        ]
        return machine_pb2.EtcdMembers(
            legacy_members=[m.hostname for m in members], members=members
        )

    async def etcd_status(self, req: Any) -> machine_pb2.EtcdStatus:
        _, cluster = self._control_plane("etcd status")
        member = cluster.member_for(self.node.ip)
        if member is None or not member.started:
            raise GRPCError(
                Status.UNKNOWN, "failed to create etcd client: etcd is not running on this node"
            )
        status = machine_pb2.EtcdMemberStatus(
            member_id=member.id,
            protocol_version=ETCD_VERSION,
            storage_version=ETCD_VERSION.rsplit(".", 1)[0] + ".0",
            db_size=1 << 22,
            db_size_in_use=1 << 21,
            leader=cluster.leader,
            raft_index=cluster.raft_index,
            raft_term=cluster.raft_term,
            raft_applied_index=cluster.raft_index,
            is_learner=member.learner,
            errors=[
                *cluster.alarm_errors(),
                *([] if cluster.quorum() else ["etcdserver: no leader"]),
            ],
        )
        return machine_pb2.EtcdStatus(member_status=status)

    async def etcd_leave_cluster(self, req: Any) -> machine_pb2.EtcdLeaveCluster:
        _, cluster = self._control_plane("etcd leave")
        member = cluster.member_for(self.node.ip)
        try:
            if member is None:
                raise EtcdError(
                    "UNKNOWN", "failed to leave cluster: this node is not an etcd member"
                )
            cluster.remove(member.id)
        except EtcdError as exc:
            raise _etcd(exc) from None
        self.node.disk.etcd_data = False
        self.node.services["etcd"] = ("Finished", None, "Left the etcd cluster")
        await self.node.fleet.cluster_changed(cluster)
        return machine_pb2.EtcdLeaveCluster()

    async def etcd_remove_member_by_id(self, req: Any) -> machine_pb2.EtcdRemoveMemberByID:
        _, cluster = self._control_plane("etcd remove member")
        try:
            member = cluster.remove(req.member_id)
        except EtcdError as exc:
            raise _etcd(exc) from None
        gone = self.node.fleet.node_by_address(member.ip)
        if gone is not None:
            gone.disk.etcd_data = False
        return machine_pb2.EtcdRemoveMemberByID()

    async def etcd_forfeit_leadership(self, req: Any) -> machine_pb2.EtcdForfeitLeadership:
        _, cluster = self._control_plane("etcd forfeit leadership")
        try:
            leader = cluster.forfeit(self.node.ip)
        except EtcdError as exc:
            raise _etcd(exc) from None
        return machine_pb2.EtcdForfeitLeadership(member=leader)
