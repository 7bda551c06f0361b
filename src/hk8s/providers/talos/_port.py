"""The port the controller talks to: Talos operations on one node, named by intent.

``TalosNodeAPI`` is what ``hk8s.controller`` depends on (a fake implements it in tests);
``TalosNodes`` implements it with ``TalosClient``, dialling each node directly at its address
(hk8s' firewall opens 50000 to the operator on every node). ``maintenance=True`` talks to a
node that has no machine config yet: insecure TLS, no client certificate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from hk8s.errors import TransientAPIError, UsageError
from hk8s.providers.talos._client import TalosClient
from hk8s.providers.talos._types import (
    ApplyMode,
    ApplyResult,
    BootstrapOutcome,
    EtcdMember,
    EtcdMemberStatus,
    RebootMode,
    ServiceStatus,
    VersionInfo,
    raise_node_errors,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from hk8s.model import Clock, Timing
    from hk8s.providers.talos._tls import TalosCredentials
    from hk8s.providers.talos._types import NodeResult

__all__ = ["TalosNodeAPI", "TalosNodes"]

T = TypeVar("T")


def _single(results: list[NodeResult[T]], phase: str) -> T:
    values = raise_node_errors(results, phase)
    if not values:
        raise TransientAPIError(f"{phase}: the node sent an empty reply")
    return values[0]


class TalosNodeAPI(Protocol):
    async def apply_config(
        self,
        node: str,
        data: bytes,
        mode: ApplyMode,
        *,
        maintenance: bool = False,
        dry_run: bool = False,
    ) -> ApplyResult:
        """``dry_run``: nothing changes; the result's mode is the one Talos would use."""
        ...

    async def bootstrap(self, node: str) -> BootstrapOutcome: ...

    async def kubeconfig(self, node: str) -> str: ...

    async def version(self, node: str, *, maintenance: bool = False) -> VersionInfo: ...

    async def etcd_members(self, node: str) -> list[EtcdMember]: ...

    async def upgrade(
        self, node: str, image: str, *, preserve: bool = False, stage: bool = False
    ) -> None: ...

    async def reboot(self, node: str, mode: RebootMode = RebootMode.DEFAULT) -> None: ...

    async def reset(self, node: str, *, graceful: bool = True, reboot: bool = False) -> None: ...

    async def leave_etcd(self, node: str) -> None: ...

    async def remove_etcd_member(self, node: str, member_id: int) -> None: ...

    async def services(self, node: str) -> list[ServiceStatus]: ...

    async def aclose(self) -> None: ...


class TalosNodes:
    """``TalosNodeAPI`` over real connections; one cached client per (node, mode)."""

    def __init__(
        self,
        credentials: TalosCredentials | None,
        *,
        timing: Timing | None = None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._credentials = credentials
        self._timing = timing
        self._clock = clock
        self._environ = environ
        self._clients: dict[tuple[str, bool], TalosClient] = {}

    def client(self, node: str, *, maintenance: bool = False) -> TalosClient:
        key = (node, maintenance)
        if key not in self._clients:
            if not maintenance and self._credentials is None:
                raise UsageError(
                    f"no Talos credentials to talk to {node} outside maintenance mode",
                    hint="the cluster's secrets bundle is needed to build a client certificate",
                )
            self._clients[key] = TalosClient(
                [node],
                credentials=None if maintenance else self._credentials,
                insecure=maintenance,
                timing=self._timing,
                clock=self._clock,
                environ=self._environ,
            )
        return self._clients[key]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def apply_config(
        self,
        node: str,
        data: bytes,
        mode: ApplyMode,
        *,
        maintenance: bool = False,
        dry_run: bool = False,
    ) -> ApplyResult:
        client = self.client(node, maintenance=maintenance)
        results = await client.apply_configuration(data, mode, dry_run=dry_run)
        return _single(results, f"apply config to {node}")

    async def bootstrap(self, node: str) -> BootstrapOutcome:
        return await self.client(node).bootstrap()

    async def kubeconfig(self, node: str) -> str:
        return await self.client(node).kubeconfig()

    async def version(self, node: str, *, maintenance: bool = False) -> VersionInfo:
        results = await self.client(node, maintenance=maintenance).version()
        return _single(results, f"version of {node}")

    async def etcd_members(self, node: str) -> list[EtcdMember]:
        results = await self.client(node).etcd_member_list()
        return _single(results, f"etcd members via {node}")

    async def upgrade(
        self, node: str, image: str, *, preserve: bool = False, stage: bool = False
    ) -> None:
        results = await self.client(node).upgrade(image, preserve=preserve, stage=stage)
        raise_node_errors(results, f"upgrade {node}")

    async def reboot(self, node: str, mode: RebootMode = RebootMode.DEFAULT) -> None:
        raise_node_errors(await self.client(node).reboot(mode), f"reboot {node}")

    async def reset(self, node: str, *, graceful: bool = True, reboot: bool = False) -> None:
        results = await self.client(node).reset(graceful=graceful, reboot=reboot)
        raise_node_errors(results, f"reset {node}")

    async def leave_etcd(self, node: str) -> None:
        raise_node_errors(await self.client(node).etcd_leave_cluster(), f"{node} leaves etcd")

    async def remove_etcd_member(self, node: str, member_id: int) -> None:
        results = await self.client(node).etcd_remove_member_by_id(member_id)
        raise_node_errors(results, f"remove etcd member {member_id:x} via {node}")

    async def services(self, node: str) -> list[ServiceStatus]:
        results = await self.client(node).service_list()
        return _single(results, f"services of {node}")

    async def etcd_status(self, node: str) -> EtcdMemberStatus:
        """The node's etcd member as it sees itself: leader, raft index, errors (alarms)."""
        return _single(await self.client(node).etcd_status(), f"etcd status of {node}")

    async def etcd_snapshot(self, node: str, path: Path) -> int:
        """Stream the node's etcd snapshot into ``path`` (mode 0600); returns its size."""
        # A whole database crosses the wire: allow the long deadline, not one request's.
        timeout = self._timing.action_timeout if self._timing is not None else None
        return await self.client(node).etcd_snapshot(path, timeout=timeout)

    async def wipe_etcd_data(self, node: str) -> None:
        """Wipe only EPHEMERAL (etcd's data), keep the config, reboot: Talos' disaster
        recovery step (``talosctl reset --graceful=false --reboot
        --system-labels-to-wipe=EPHEMERAL``)."""
        results = await self.client(node).reset(
            graceful=False, reboot=True, system_partitions={"EPHEMERAL": True}
        )
        raise_node_errors(results, f"wipe etcd data of {node}")

    async def recover_etcd(self, node: str, snapshot: Path) -> BootstrapOutcome:
        """Upload ``snapshot`` and bootstrap etcd from it (``talosctl bootstrap
        --recover-from``)."""
        client = self.client(node)
        timeout = self._timing.action_timeout if self._timing is not None else None
        await client.etcd_recover(snapshot, timeout=timeout)
        return await client.bootstrap(recover_etcd=True)
