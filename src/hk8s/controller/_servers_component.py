"""The servers component: observes a cluster's servers by label, plans creates and removals,
and creates them with everything in the one request.

Creates run all at once (no slot count: the Hetzner provider paces requests with its shared
rate limiter and bounds requests in flight; action waits share batched polls). Removals are
delegated to a ``ServerRemover`` (``_scale``: cordon, drain, etcd, node object, then the
server), because removing a node safely needs the cluster's APIs.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from hk8s.controller._executor import LeftOut
from hk8s.controller._ownership import check_adoptable
from hk8s.controller._report import ProgressEvent
from hk8s.controller._servers import (
    DesiredServer,
    desired_servers,
    diff_servers,
    server_selector,
)
from hk8s.errors import ConflictError, NotFoundError, WaitTimeoutError
from hk8s.model.resources import Network, PlacementGroup, Server, ServerSpec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._executor import Handler, Results
    from hk8s.controller._plan import Operation
    from hk8s.controller._report import Reporter
    from hk8s.controller._stragglers import Stragglers
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["ServerRemover", "ServersComponent"]


class ServerRemover(Protocol):
    """Takes a server out of the cluster safely, then deletes it (idempotent)."""

    async def __call__(self, server: Server) -> None: ...


class ServersComponent:
    """Plans ``create``/``delete server`` operations for every pool of ``config``.

    ``images`` maps an architecture to the snapshot id servers of that architecture boot; it
    may be filled in after ``plan`` (``hk8s plan`` shows creates before any image exists).
    ``listed``: the cluster's servers as this run already listed them; the first ``observe``
    takes them instead of listing again (``create`` lists them first to find its secrets and
    versions, and nothing in between creates or deletes a server of the cluster: a second
    operator stops at the claim). Later ``observe`` calls list afresh.
    """

    def __init__(
        self,
        hcloud: HcloudPort,
        config: ClusterConfig,
        *,
        cluster_id: str,
        images: Mapping[str, int] | None = None,
        remover: ServerRemover | None = None,
        listed: Sequence[Server] | None = None,
        stragglers: Stragglers | None = None,
    ) -> None:
        self.hcloud = hcloud
        self.config = config
        self.images: dict[str, int] = dict(images or {})
        self.remover = remover
        self.desired: list[DesiredServer] = desired_servers(config, cluster_id=cluster_id)
        self.observed: list[Server] = []
        self._listed = list(listed) if listed is not None else None
        self._lookup_lock = asyncio.Lock()
        self._network: Network | None = None
        self._groups: dict[str, PlacementGroup] | None = None
        # Ends the wait of a server left far behind by those created with it (create only).
        self.stragglers = stragglers

    async def observe(self) -> None:
        if self._listed is not None:
            self.observed, self._listed = self._listed, None
            return
        self.observed = await self.hcloud.list_servers(server_selector(self.config.name))

    def after_apply(self, results: Mapping[str, object]) -> list[Server] | None:
        """The cluster's servers after an apply of this component's operations, when the
        observation still holds them all: no server was created (a create's answer has the
        server as created, not yet running), so the list is as observed. None: list again.
        Removals are applied later (``split_removals``), after this is read."""
        if any(key.startswith("server/") for key in results):
            return None
        return list(self.observed)

    def diff(self) -> list[Operation]:
        return diff_servers(self.config.name, self.desired, self.observed, images=self.images)

    def warnings(self) -> list[str]:
        return []

    def handlers(self, reporter: Reporter) -> dict[str, Handler]:
        async def server(op: Operation, results: Results) -> object:
            if op.type == "delete":
                assert isinstance(op.current, Server)
                await self._remove(op.current)
                return None
            assert isinstance(op.desired, DesiredServer)
            return await self._create(op.desired, results, reporter)

        return {"server": server}

    # -- create ------------------------------------------------------------------------------

    async def _create(self, desired: DesiredServer, results: Results, reporter: Reporter) -> Server:
        image = self.images.get(desired.arch)
        if image is None:
            raise NotFoundError(
                f"no Talos snapshot for {desired.arch} to create {desired.name} from",
                hint="run `hk8s image build -f <config>` or drop --no-build-images",
            )
        network = await self._network_of(results)
        group = await self._group_of(desired.placement_group, results)
        spec = ServerSpec(
            name=desired.name,
            server_type=desired.server_type,
            image=image,
            location=desired.location,
            labels=dict(desired.labels),
            network_ids=(network.id,),
            placement_group_id=group.id if group else None,
            start_after_create=True,
        )
        created = self.hcloud.create_server(spec)
        try:
            if self.stragglers is not None:
                what = f"server {desired.name} to be created and running"
                return await self.stragglers.run(what, created)
            return await created
        except WaitTimeoutError as exc:
            # Created, but Hetzner never finished starting it (stuck in "starting"): the
            # rest of the cluster goes on without it, and create names it at the end.
            found = await self.hcloud.list_servers(name=desired.name)
            if not found:
                raise
            if found[0].status == "running":
                return found[0]  # it got there after all
            raise LeftOut(
                f"server {desired.name} is stuck in Hetzner's {found[0].status!r} state: "
                f"going on without it ({exc.message})"
            ) from exc
        except ConflictError as exc:
            if exc.context.get("code") != "uniqueness_error":
                raise
            # A run that was interrupted (or a lost answer) created it already: adopt it.
            found = await self.hcloud.list_servers(name=desired.name)
            if not found:
                raise
            check_adoptable("server", desired.name, found[0].labels, self.config.name)
            reporter.emit(
                ProgressEvent("info", f"server/{desired.name}", f"adopted server {desired.name}")
            )
            return found[0]

    async def _network_of(self, results: Results) -> Network:
        created = results.get(f"network/{self.config.name}")
        if isinstance(created, Network):
            return created
        async with self._lookup_lock:
            if self._network is None:
                found = await self.hcloud.list_networks(name=self.config.name)
                if not found:
                    raise NotFoundError(
                        f"network {self.config.name} does not exist",
                        hint="run `hk8s infra` (create does it first)",
                    )
                self._network = found[0]
            return self._network

    async def _group_of(self, name: str, results: Results) -> PlacementGroup | None:
        created = results.get(f"placement-group/{name}")
        if isinstance(created, PlacementGroup):
            return created
        async with self._lookup_lock:
            if self._groups is None:
                groups = await self.hcloud.list_placement_groups(
                    f"cluster={self.config.name},managed-by=hk8s"
                )
                self._groups = {g.name: g for g in groups}
            return self._groups.get(name)

    # -- delete ------------------------------------------------------------------------------

    async def _remove(self, server: Server) -> None:
        if self.remover is not None:
            await self.remover(server)
            return
        try:
            await self.hcloud.delete_server(server.id)
        except NotFoundError:
            return
