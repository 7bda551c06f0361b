"""Snapshots for a config: observe by label -> plan the missing ones -> build them in parallel.

``ImageBuilds`` is what ``hk8s image build|list|prune`` and ``hk8s create`` use;
``ensure_images(config, hcloud)`` is the one-call form ``create`` needs::

    images = await ensure_images(config, hcloud, reporter=reporter)   # {"amd64": Image}

Decisions:
- The architectures are those of the config's pools, from the API's server types (``cax*`` is
  ``arm``), unless the caller names them.
- A snapshot with the target's labels and status ``available`` means nothing to do; one still
  ``creating`` (another run's, or one interrupted after the request) is waited for, not
  duplicated. Several matches: the newest is used.
- ``force`` builds a new snapshot and, once it is available, deletes the ones it replaces, so
  there is again exactly one per target (a failed rebuild keeps the old one).
- Every run first removes build leftovers (servers and keys labelled ``hk8s/role=image-build``)
  older than ``leftover_age``, by their ``hk8s/created`` label (wall-clock UNIX seconds). The
  default is one hour (``4 x Timing.action_timeout``, so it shrinks with ``HK8S_TIME_SCALE``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hk8s.controller._executor import Executor
from hk8s.controller._ownership import build_selector, is_build_resource
from hk8s.controller._plan import Operation, Plan
from hk8s.controller._report import NullReporter, ProgressEvent
from hk8s.controller.image._build import (
    BuildClaimed,
    BuildSite,
    SnapshotBuilder,
    claim_key_name,
    ignore_missing,
)
from hk8s.controller.image._claim import (
    HEARTBEAT_LABEL,
    STALE_BEATS,
    ClaimLost,
    ClaimWatch,
    take_over,
)
from hk8s.controller.image._schematic import SchematicResolver
from hk8s.controller.image._spec import (
    ARCHITECTURES,
    BUILD_ID_LABEL,
    CREATED_LABEL,
    SNAPSHOT_SELECTOR,
    ImageTarget,
    build_site,
    needed_architectures,
)
from hk8s.errors import ConflictError, NotFoundError
from hk8s.model.clock import SystemClock
from hk8s.model.labels import format_selector, sanitize_label_value
from hk8s.model.resources import Image
from hk8s.model.timing import Timing

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._executor import Results
    from hk8s.controller._report import EventKind, Reporter
    from hk8s.controller.image._spec import Arch
    from hk8s.model.clock import Clock
    from hk8s.model.resources import ServerType
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.ssh import RemoteShell, SSHKeyPair

__all__ = ["ImageBuilds", "ObservedImages", "ensure_images"]

LEFTOVER_AGE_FACTOR = 4.0  # x Timing.action_timeout (900 s) = one hour at real speed


@dataclass(frozen=True)
class ObservedImages:
    """What exists for a set of targets: usable snapshots, pending ones, and the plan."""

    targets: tuple[ImageTarget, ...]
    available: dict[str, Image]  # by arch
    plan: Plan


class ImageBuilds:
    """Finds, builds, lists and prunes hk8s' Talos snapshots in one Hetzner project."""

    def __init__(
        self,
        hcloud: HcloudPort,
        *,
        clock: Clock | None = None,
        timing: Timing | None = None,
        reporter: Reporter | None = None,
        resolver: SchematicResolver | None = None,
        shell_factory: Callable[[], RemoteShell] | None = None,
        key_factory: Callable[[str], SSHKeyPair] | None = None,
        wall: Callable[[], float] = time.time,
        leftover_age: float | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.hcloud = hcloud
        self.clock: Clock = clock or SystemClock()
        self.timing = timing or Timing.from_env()
        self.reporter: Reporter = reporter or NullReporter()
        self.resolver = resolver or SchematicResolver()
        self.wall = wall
        self.leftover_age = (
            leftover_age
            if leftover_age is not None
            else LEFTOVER_AGE_FACTOR * self.timing.action_timeout
        )
        extra: dict[str, Any] = {} if new_id is None else {"new_id": new_id}
        self.builder = SnapshotBuilder(
            hcloud,
            clock=self.clock,
            timing=self.timing,
            shell_factory=shell_factory or self._paramiko_shell,
            key_factory=key_factory or _ed25519_key,
            reporter=self.reporter,
            wall=wall,
            **extra,
        )
        self._types: list[ServerType] | None = None

    def _paramiko_shell(self) -> RemoteShell:
        from hk8s.providers.ssh import ParamikoShell

        return ParamikoShell(clock=self.clock, timing=self.timing)

    async def server_types(self) -> list[ServerType]:
        if self._types is None:
            self._types = await self.hcloud.server_types()
        return self._types

    async def targets(
        self, config: ClusterConfig, archs: Sequence[Arch] | None = None
    ) -> list[ImageTarget]:
        """The snapshots ``config`` needs (or the named architectures of its version)."""
        if archs is None:
            catalogue = {t.name: t for t in await self.server_types()}
            archs = needed_architectures([p.server_type for p in config.pools()], catalogue)
        schematic = await self.resolver.resolve(config.talos)
        ordered = [a for a in ARCHITECTURES if a in set(archs)]
        return [ImageTarget(a, config.talos.version, schematic) for a in ordered]

    async def observe(
        self, targets: Sequence[ImageTarget], *, force: bool = False
    ) -> ObservedImages:
        """One label-selector list call; a ``create image`` operation per missing snapshot."""
        images = await self.hcloud.list_images(SNAPSHOT_SELECTOR, type="snapshot")
        available: dict[str, Image] = {}
        operations: list[Operation] = []
        for target in targets:
            matches = sorted((i for i in images if target.matches(i)), key=lambda i: i.id)
            ready = [i for i in matches if i.status == "available"]
            pending = [i for i in matches if i.status == "creating"]
            if ready and not force:
                available[target.arch] = ready[-1]
                continue
            if pending and not force:
                reason = f"snapshot {pending[-1].id} is still being created"
                params: dict[str, Any] = {"pending": pending[-1].id}
            elif ready:
                ids = ", ".join(str(i.id) for i in ready)
                reason = f"--force: rebuild (replaces snapshot {ids})"
                params = {"replaces": [i.id for i in ready]}
            else:
                reason = f"no snapshot labelled {target.selector()}"
                params = {}
            operations.append(
                Operation("create", "image", target.name, reason, desired=target, params=params)
            )
        return ObservedImages(tuple(targets), available, Plan(tuple(operations)))

    async def ensure(
        self,
        config: ClusterConfig,
        *,
        archs: Sequence[Arch] | None = None,
        force: bool = False,
        sweep: bool = True,
    ) -> dict[str, Image]:
        """Every snapshot ``config`` needs, built where missing; ``{arch: Image}``.

        ``sweep=False`` when the caller has just swept the build leftovers itself.
        """
        if sweep:
            await self.sweep_leftovers()
        observed = await self.observe(await self.targets(config, archs), force=force)
        if observed.plan.empty:
            return dict(observed.available)
        site_of: dict[str, BuildSite] = {}
        for op in observed.plan.operations:
            site_of[op.name] = await self._site(_target_of(op), config)

        async def build(op: Operation, results: Results) -> Image:
            target = _target_of(op)
            pending = op.params.get("pending")
            if pending is not None:
                image = await self._wait_pending(target, int(pending))
                if image is not None:
                    return image
            replaces = frozenset(int(i) for i in op.params.get("replaces", []))
            image = await self._build_once(target, site_of[op.name], replaces)
            for old in op.params.get("replaces", []):
                self._step(target, f"deleting replaced snapshot {old}")
                await ignore_missing(self.hcloud.delete_image(int(old)))
            return image

        results = await Executor({"image": build}, self.reporter).run(
            observed.plan, phase="image build"
        )
        built = dict(observed.available)
        for op in observed.plan.operations:
            image = results[op.key]
            assert isinstance(image, Image)
            built[_target_of(op).arch] = image
        return built

    async def _build_once(
        self, target: ImageTarget, site: BuildSite, replaces: frozenset[int] = frozenset()
    ) -> Image:
        """Build ``target``, or wait for the build another run has claimed."""
        retry = False
        while True:
            if retry:
                # The run we waited for, or the one that took our claim over, may have
                # finished between its claim's end and ours: take its snapshot, not a second.
                found = await self._available(target, replaces)
                if found is not None:
                    return found
            retry = True
            try:
                return await self.builder.build(target, site, replaces=replaces)
            except BuildClaimed as claimed:
                image = await self._wait_claimed(claimed, replaces)
                if image is not None:
                    return image
                # The other build ended without a snapshot (or its claim went stale): ours.
            except ClaimLost:
                # Ours was taken over after missed heartbeats: claim again, which finds the
                # new owner's claim and waits for it.
                self._step(target, "this build's claim was taken over: waiting for the new one")

    async def _wait_claimed(
        self, claimed: BuildClaimed, replaces: frozenset[int] = frozenset()
    ) -> Image | None:
        """The snapshot another run is building, once available; None if that build ended
        without one or its claim went stale (``image._claim``): then the stale claim and its
        build server are deleted, and the caller claims anew."""
        target = claimed.target
        name = claim_key_name(target)
        try:
            started = float(claimed.labels.get(CREATED_LABEL, ""))
        except ValueError:
            started = self.wall()
        watch = ClaimWatch(STALE_BEATS * self.timing.claim_heartbeat_interval)
        build = claimed.labels.get(BUILD_ID_LABEL, "?")
        while True:
            image = await self._available(target, replaces)
            if image is not None:
                return image
            keys = [
                k
                for k in await self.hcloud.list_ssh_keys(name=name)
                if is_build_resource(k.labels) and k.id == claimed.key_id
            ]
            if not keys:
                return None
            now = self.clock.now()
            if watch.stale(keys[0].labels, now) or (
                HEARTBEAT_LABEL not in keys[0].labels and self.wall() - started > self.leftover_age
            ):
                idle = watch.idle(now)
                self._step(
                    target,
                    f"build claim {name} is stale (no heartbeat for {idle:.0f} s): taking it over",
                )
                await take_over(self.hcloud, claimed.key_id)
                await self._remove_build(build)
                return None
            self._step(target, f"another run is building it (build {build})", "waiting")
            await self.clock.sleep(self.timing.node_poll_interval)

    async def _available(self, target: ImageTarget, replaces: frozenset[int]) -> Image | None:
        """An available snapshot of ``target``, other than those a --force build replaces."""
        for image in await self.hcloud.list_images(target.selector(), type="snapshot"):
            if target.matches(image) and image.status == "available" and image.id not in replaces:
                return image
        return None

    async def _remove_build(self, build_id: str) -> None:
        """The build server of a build whose claim was taken over (its owner is dead)."""
        if build_id == "?":
            return
        selector = format_selector({BUILD_ID_LABEL: build_id})
        for server in await self.hcloud.list_servers(selector):
            # Re-checked here: an API that ignored the selector must not cost another build.
            if is_build_resource(server.labels) and server.labels.get(BUILD_ID_LABEL) == build_id:
                detail = f"deleting build server {server.name} of the stale claim"
                self._say("info", "image/leftovers", "remove image build leftovers", detail)
                await ignore_missing(self.hcloud.delete_server(server.id))

    async def _site(self, target: ImageTarget, config: ClusterConfig) -> BuildSite:
        """Where to build: what the API sells right now (``build_site``), in the config's
        location or its network zone first."""
        types = await self.server_types()
        locations = await self.hcloud.locations()
        zone = next(
            (loc.network_zone for loc in locations if loc.name == config.location),
            config.network_zone,
        )
        in_zone = [loc.name for loc in locations if loc.network_zone == zone]
        now = datetime.fromtimestamp(self.wall(), UTC)
        server_type, location = build_site(types, target.arch, config.location, in_zone, now)
        return BuildSite(server_type.name, location, config.talos.image_factory, config.name)

    async def _wait_pending(self, target: ImageTarget, image_id: int) -> Image | None:
        """Wait for another build's snapshot; None if it vanished or failed (build anew)."""
        deadline = self.clock.now() + self.timing.action_timeout
        while self.clock.now() < deadline:
            try:
                image = await self.hcloud.get_image(image_id)
            except NotFoundError:
                return None
            if image.status == "available":
                return image
            if image.status != "creating":
                return None
            self._step(target, f"snapshot {image_id} is being created", "waiting")
            await self.clock.sleep(self.timing.node_poll_interval)
        return None

    async def sweep_leftovers(self) -> list[str]:
        """Delete build servers and keys older than ``leftover_age``; their names.

        Run by every command that can start a build (``create``, ``image build``) and by
        ``image prune``, whether or not a build is needed: a build killed mid-way leaves its
        server and key, and only a later run can remove them (``destroy`` removes those its
        cluster's runs started, of any age).
        """
        selector = build_selector()
        now = self.wall()
        removed: list[str] = []

        def stale(labels: dict[str, str]) -> bool:
            try:
                created = float(labels.get(CREATED_LABEL, ""))
            except ValueError:
                return True  # not written by hk8s' builder as it is now: nothing protects it
            return now - created > self.leftover_age

        for server in await self.hcloud.list_servers(selector):
            if is_build_resource(server.labels) and stale(server.labels):
                detail = f"deleting build server {server.name} left by an earlier build"
                self._say("info", "image/leftovers", "remove image build leftovers", detail)
                await ignore_missing(self.hcloud.delete_server(server.id))
                removed.append(server.name)
        for key in await self.hcloud.list_ssh_keys(selector):
            if is_build_resource(key.labels) and stale(key.labels):
                await ignore_missing(self.hcloud.delete_ssh_key(key.id))
                removed.append(key.name)
        return removed

    async def list_snapshots(self) -> list[Image]:
        """Every snapshot hk8s built, oldest first.

        The API's ``type``/``label_selector`` filters are checked again here: an answer that
        ignored them once made ``image prune --yes`` delete a system image.
        """
        images = await self.hcloud.list_images(SNAPSHOT_SELECTOR, type="snapshot")
        return sorted((i for i in images if is_talos_snapshot(i)), key=lambda i: i.id)

    async def unreferenced(
        self, configs: Sequence[ClusterConfig]
    ) -> tuple[list[Image], list[Image]]:
        """(snapshots no config references, those kept because a server runs them or a build
        is still creating them)."""
        wanted: set[tuple[str, str]] = set()
        for config in configs:
            schematic = await self.resolver.resolve(config.talos)
            wanted.add(
                (sanitize_label_value(config.talos.version), sanitize_label_value(schematic))
            )
        in_use = {s.image_id for s in await self.hcloud.list_servers() if s.image_id is not None}
        candidates: list[Image] = []
        busy: list[Image] = []
        for image in await self.list_snapshots():
            key = (image.labels.get("talos-version", ""), image.labels.get("schematic", ""))
            if key in wanted:
                continue
            # A snapshot still being created belongs to a build running right now.
            keep = image.id in in_use or image.status == "creating"
            (busy if keep else candidates).append(image)
        return candidates, busy

    async def delete(self, images: Sequence[Image]) -> None:
        for image in images:
            if not is_talos_snapshot(image):
                raise ConflictError(
                    f"refusing to delete image {image.id}: it is not a snapshot labelled "
                    f"{SNAPSHOT_SELECTOR}",
                    hint="the API answered with resources the filter should have excluded",
                )
            self._say("info", f"image/{image.id}", f"delete snapshot {image.id}", image.description)
            await ignore_missing(self.hcloud.delete_image(image.id))

    def _say(self, kind: EventKind, key: str, title: str, detail: str) -> None:
        self.reporter.emit(ProgressEvent(kind, key, title, detail))

    def _step(self, target: ImageTarget, detail: str, kind: EventKind = "info") -> None:
        """Progress of one target's operation, keyed as the builder's steps are."""
        key, title = f"image/{target.name}", f"create image {target.name}"
        self._say("info", f"{key}/build", title, detail)
        if kind == "waiting":
            self._say("waiting", key, title, detail)


def is_talos_snapshot(image: Image) -> bool:
    """What ``SNAPSHOT_SELECTOR`` and ``type=snapshot`` ask for, checked on the labels read."""
    return (
        image.type == "snapshot"
        and image.labels.get("os") == "talos"
        and image.labels.get("managed-by") == "hk8s"
    )


def _target_of(op: Operation) -> ImageTarget:
    target = op.desired
    if not isinstance(target, ImageTarget):
        raise TypeError(f"operation {op.key} has no image target")
    return target


def _ed25519_key(comment: str) -> SSHKeyPair:
    from hk8s.providers.ssh import generate_ed25519_key

    return generate_ed25519_key(comment)


async def ensure_images(
    config: ClusterConfig,
    hcloud: HcloudPort,
    *,
    archs: Sequence[Arch] | None = None,
    force: bool = False,
    **options: Any,
) -> dict[str, Image]:
    """The snapshot per architecture ``config`` needs, built when missing (``hk8s create``).

    ``options`` are ``ImageBuilds``' (clock, timing, reporter, resolver, ...).
    """
    return await ImageBuilds(hcloud, **options).ensure(config, archs=archs, force=force)
