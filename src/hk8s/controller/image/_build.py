"""One snapshot build: temporary server -> rescue system -> SSH -> image on disk -> snapshot.

The steps, for one ``ImageTarget`` (``SnapshotBuilder.build``):

1. an ephemeral ed25519 key, registered with Hetzner (labelled with the build id) under the
   target's name: the build's claim, refreshed by a heartbeat while the build runs
   (``image._claim``);
2. a small server of the target's architecture from ``debian-12``, not started
   (``start_after_create=false``), labelled ``hk8s/role=image-build,hk8s/build=<id>`` and
   ``hk8s/created=<unix time>``;
3. rescue mode with the key, power on, SSH with backoff until the rescue system answers;
4. the boot disk from ``lsblk``; the factory's ``hcloud-<arch>.raw.xz`` downloaded to the
   rescue system's RAM disk, then streamed through ``xz -dc`` onto the disk with
   ``dd bs=4M conv=fsync``. Downloading first (the compressed image is a few hundred MB at
   most; the smallest build types have 2-4 GB of RAM) keeps a 404 (``curl -f`` exit 22) apart
   from write errors, and lets the check below hash exactly the bytes that were written
   without fetching them twice;
5. verification, after ``sync`` and dropping the page cache: the SHA-256 of the decompressed
   image against the SHA-256 of as many bytes read back from the disk (N from dd's summary;
   ``head -c N /dev/sda | sha256sum``: plain coreutils, so the real rescue system runs it too);
6. graceful shutdown (hard power off if ACPI is ignored), snapshot with labels and
   description, wait until it is ``available``.

Whatever happens, including Ctrl-C, the ``finally`` removes every server and key carrying the
build id, and a failed build's unfinished snapshot (found by label, so a create whose answer
was lost is caught too). The cleanup is shielded from cancellation; a second Ctrl-C during it
is deferred until it is done. A create that the provider retried after a lost answer and that
then hits its own name (``uniqueness_error``) adopts the resource carrying the build id.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hk8s.controller._report import NullReporter, ProgressEvent
from hk8s.controller.image._claim import (
    HEARTBEAT_LABEL,
    ClaimHeartbeat,
    ClaimLost,
    beat_value,
)
from hk8s.controller.image._commands import (
    between_markers,
    discard_command,
    download_command,
    marked,
    remote,
    verify_command,
    write_command,
)
from hk8s.controller.image._disk import find_boot_disk
from hk8s.controller.image._errors import (
    ImageDownloadError,
    ImageVerifyError,
    RescueUnreachableError,
)
from hk8s.controller.image._spec import BUILD_ID_LABEL, build_labels, image_url
from hk8s.errors import (
    ActionFailedError,
    ConflictError,
    NotFoundError,
    UnavailableError,
    WaitTimeoutError,
)
from hk8s.model.labels import format_selector
from hk8s.model.resources import ServerSpec, SSHKeySpec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence

    from hk8s.controller._report import EventKind, Reporter
    from hk8s.controller.image._spec import ImageTarget
    from hk8s.model.clock import Clock
    from hk8s.model.resources import Image, SSHKey
    from hk8s.model.timing import Timing
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.ssh import RemoteShell, SSHKeyPair

__all__ = [
    "BuildClaimed",
    "BuildSite",
    "SnapshotBuilder",
    "claim_key_name",
    "ignore_missing",
    "run_shielded",
]

BUILD_IMAGE = "debian-12"  # any stock image: the rescue system overwrites its disk anyway
DOWNLOAD_PATH = "/tmp/hk8s-talos.raw.xz"  # the rescue system's root is a RAM disk
_BYTES = re.compile(r"^(\d+) bytes", re.MULTILINE)
_SHA = re.compile(r"^([0-9a-f]{64})\b", re.MULTILINE)


class _Labelled(Protocol):
    @property
    def labels(self) -> dict[str, str]: ...


_R = TypeVar("_R", bound=_Labelled)
_T = TypeVar("_T")


@dataclass(frozen=True)
class BuildSite:
    """Where and on what one build runs, and where its image comes from."""

    server_type: str
    location: str
    factory: str
    cluster: str | None = None  # whose run started it (``hk8s/build-for``)


async def run_shielded(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to its end even if the caller is cancelled; re-raise the cancel after."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    if not task.cancelled():
        task.result()


class SnapshotBuilder:
    """Builds snapshots through rescue-mode SSH; see the module docstring for the steps."""

    def __init__(
        self,
        hcloud: HcloudPort,
        *,
        clock: Clock,
        timing: Timing,
        shell_factory: Callable[[], RemoteShell],
        key_factory: Callable[[str], SSHKeyPair],
        reporter: Reporter | None = None,
        wall: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: secrets.token_hex(4),
    ) -> None:
        self._hcloud = hcloud
        self._clock = clock
        self._timing = timing
        self._shell_factory = shell_factory
        self._key_factory = key_factory
        self._reporter = reporter or NullReporter()
        self._wall = wall
        self._new_id = new_id

    async def build(
        self, target: ImageTarget, site: BuildSite, *, replaces: frozenset[int] = frozenset()
    ) -> Image:
        """Build ``target`` on a temporary server; return the available snapshot (or one
        another run finished meanwhile, other than those this build ``replaces``)."""
        build_id = self._new_id()
        shell = self._shell_factory()
        succeeded = False
        try:
            image = await self._build(target, site, build_id, shell, replaces)
            succeeded = True
            return image
        finally:
            await run_shielded(self._cleanup(target, build_id, shell, succeeded))

    async def _build(
        self,
        target: ImageTarget,
        site: BuildSite,
        build_id: str,
        shell: RemoteShell,
        replaces: frozenset[int],
    ) -> Image:
        """Claim the target, then build while the claim's heartbeat runs beside the build: a
        lost claim (``ClaimLost``) cancels the build (``image._claim``)."""
        name = f"hk8s-build-{target.arch}-{build_id}"
        labels = build_labels(build_id, target.arch, self._wall(), site.cluster)
        key = self._key_factory(name)
        ssh_key = await self._claim(target, build_id, key, labels)
        # Another run may have finished this snapshot (and dropped its claim) between the
        # caller's look and this claim: then it is the result, and no second one is built.
        for found in await self._hcloud.list_images(target.selector(), type="snapshot"):
            if target.matches(found) and found.status == "available" and found.id not in replaces:
                self._say(target, f"snapshot {found.id} was finished by another run meanwhile")
                return found
        heart = ClaimHeartbeat(
            self._hcloud,
            ssh_key.id,
            ssh_key.labels,
            clock=self._clock,
            interval=self._timing.claim_heartbeat_interval,
            wall=self._wall,
            warn=lambda text: self._say(target, text, "warning"),
        )
        work = self._provision(target, site, name, labels, key, ssh_key, shell)
        try:
            image = await _unless_lost(heart.run(), work)
        except (ClaimLost, asyncio.CancelledError):
            raise
        except Exception as exc:
            if await heart.lost():
                raise ClaimLost(f"build {build_id} was taken over: {exc}") from exc
            raise
        # A takeover while the snapshot was being created: the new owner builds its own, so
        # this one must not survive (the cleanup deletes it: the build did not succeed).
        await heart.confirm()
        return image

    async def _claim(
        self, target: ImageTarget, build_id: str, key: SSHKeyPair, labels: dict[str, str]
    ) -> SSHKey:
        """Register the claim key, with its first heartbeat; ``BuildClaimed`` if taken."""
        hc = self._hcloud
        # The key's name is the same for every build of this target, and Hetzner names are
        # unique: registering it claims the build. Two creates needing the same snapshot at
        # once build it once; the other waits for it (``BuildClaimed``).
        claim = claim_key_name(target)
        self._say(target, f"registering SSH key {claim}")
        key_labels = {**labels, HEARTBEAT_LABEL: beat_value(self._wall(), 0)}
        try:
            return await hc.create_ssh_key(SSHKeySpec(claim, key.public_openssh, key_labels))
        except ConflictError as exc:
            found = await hc.list_ssh_keys(name=claim)
            theirs = [k for k in found if k.labels.get(BUILD_ID_LABEL) != build_id]
            if exc.context.get("code") == "uniqueness_error" and theirs:
                raise BuildClaimed(target, theirs[0].id, theirs[0].labels) from None
            return await _adopt(exc, found, build_id)

    async def _provision(
        self,
        target: ImageTarget,
        site: BuildSite,
        name: str,
        labels: dict[str, str],
        key: SSHKeyPair,
        ssh_key: SSHKey,
        shell: RemoteShell,
    ) -> Image:
        hc, timing = self._hcloud, self._timing
        self._say(target, f"creating build server {name} ({site.server_type}, {site.location})")
        # The key is also given at create (so Hetzner mails no root password); the server never
        # boots the stock image: rescue is enabled before its first power-on.
        spec = ServerSpec(
            name=name,
            server_type=site.server_type,
            image=BUILD_IMAGE,
            location=site.location,
            labels=labels,
            ssh_key_ids=(ssh_key.id,),
            start_after_create=False,
        )
        build_id = labels[BUILD_ID_LABEL]
        try:
            server = await hc.create_server(spec)
        except ConflictError as exc:
            server = await _adopt(exc, await hc.list_servers(name=name), build_id)
        self._say(target, "enabling the rescue system")
        await hc.enable_rescue(server.id, [ssh_key.id])
        await hc.power_on(server.id)
        host = server.public_ipv4
        if host is None:
            raise UnavailableError(f"build server {name} has no public IPv4", server=name)
        self._say(target, f"waiting for SSH on {host} (rescue boot)", "waiting")
        try:
            await shell.connect(host, key, timeout=timing.boot_timeout)
        except WaitTimeoutError as exc:
            raise RescueUnreachableError(
                host, timing.boot_timeout, last_error=exc.last_error, server=name
            ) from exc
        disk = await find_boot_disk(shell, timing.request_timeout, server=name)
        await self._write(target, site, shell, disk, name)
        await self._power_down(target, server.id, name)
        self._say(target, "creating the snapshot")
        # The build id on the snapshot lets a failed or interrupted build find and delete it.
        snapshot_labels = {**target.labels(), BUILD_ID_LABEL: build_id}
        image = await hc.create_snapshot(server.id, target.description, snapshot_labels)
        return await self._wait_available(target, image)

    async def _write(
        self, target: ImageTarget, site: BuildSite, shell: RemoteShell, disk: str, server: str
    ) -> None:
        from hk8s.providers.ssh import CommandFailedError

        url = image_url(site.factory, target)
        long = self._timing.action_timeout
        self._say(target, f"downloading {url}")
        try:
            await shell.run(remote(download_command(url, DOWNLOAD_PATH), long), timeout=long)
        except CommandFailedError as exc:
            if exc.status == 22 and "404" in exc.result.stderr:
                raise ImageDownloadError(
                    f"the Image Factory has no Talos {target.version} {target.arch} image for "
                    f"schematic {target.schematic}",
                    hint="check talos.version and talos.schematic in cluster.yaml",
                    url=url,
                ) from exc
            raise
        self._say(target, f"discarding and writing the image to {disk}")
        await shell.run(remote(discard_command(disk), long), timeout=long)
        written = await shell.run(remote(write_command(DOWNLOAD_PATH, disk), long), timeout=long)
        match = _BYTES.search(written.stderr)
        size = int(match.group(1)) if match else 0
        if size <= 0:
            raise ImageVerifyError(
                f"dd wrote nothing to {disk}: {written.stderr.strip()[-300:]}", server=server
            )
        self._say(target, f"verifying {size} bytes on {disk}")
        check = await shell.run(
            remote(marked(verify_command(DOWNLOAD_PATH, disk, size)), long), timeout=long
        )
        check_out = between_markers(check.stdout)
        sums = _SHA.findall(check_out)
        if len(sums) != 2 or sums[0] != sums[1]:
            raise ImageVerifyError(
                f"{disk} does not hold the downloaded image (sha256 {' vs '.join(sums) or '?'})",
                hint="the disk may be failing; re-run `hk8s image build`",
                server=server,
            )

    async def _power_down(self, target: ImageTarget, server_id: int, name: str) -> None:
        """ACPI shutdown; a hard power off if the server is not off in a while.

        The data is already fsync'ed and the rescue system lives in RAM, so the power off
        loses nothing; the graceful attempt just keeps the snapshot's disk quiescent.
        """
        self._say(target, "shutting down the build server")
        await self._hcloud.shutdown(server_id)
        grace = self._timing.boot_timeout / 5
        try:
            await self._poll(f"{name} to be off", lambda: self._is_off(name), grace)
        except WaitTimeoutError:
            await self._hcloud.power_off(server_id)

    async def _is_off(self, name: str) -> bool:
        found = await self._hcloud.list_servers(name=name)
        return bool(found) and found[0].status == "off"

    async def _wait_available(self, target: ImageTarget, image: Image) -> Image:
        latest = image

        async def available() -> bool:
            nonlocal latest
            if latest.status != "available":
                latest = await self._hcloud.get_image(image.id)
            if latest.status not in {"available", "creating"}:
                raise ActionFailedError(
                    f"snapshot {image.id} ended in status {latest.status}", image=image.id
                )
            return latest.status == "available"

        if image.status != "available":
            self._say(target, f"waiting for snapshot {image.id}", "waiting")
            await self._poll(f"snapshot {image.id}", available, self._timing.action_timeout)
        return latest

    async def _poll(self, what: str, check: Callable[[], Awaitable[bool]], timeout: float) -> None:
        deadline = self._clock.now() + timeout
        while not await check():
            if self._clock.now() >= deadline:
                raise WaitTimeoutError(what, timeout)
            await self._clock.sleep(self._timing.node_poll_interval)

    async def _cleanup(
        self, target: ImageTarget, build_id: str, shell: RemoteShell, succeeded: bool
    ) -> None:
        """Delete every server and key of this build, and its snapshot unless it succeeded.

        The half-made snapshot goes first: while it is being created it locks the server.
        Problems become warnings (the leftover sweep of a later run deletes what is left).
        """
        with contextlib.suppress(Exception):  # the connection is being dropped anyway
            await shell.close()
        selector = format_selector({BUILD_ID_LABEL: build_id})
        hc = self._hcloud

        def ours(labels: dict[str, str]) -> bool:
            # Re-checked here, not trusted to the API's filter: an API that ignored the
            # selector must not make this delete someone else's resource.
            return labels.get(BUILD_ID_LABEL) == build_id

        try:
            if not succeeded:
                for image in await hc.list_images(selector, type="snapshot"):
                    if ours(image.labels) and image.type == "snapshot":
                        self._say(target, f"deleting unfinished snapshot {image.id}")
                        await ignore_missing(hc.delete_image(image.id))
            for server in await hc.list_servers(selector):
                if ours(server.labels):
                    self._say(target, f"deleting build server {server.name}")
                    await ignore_missing(hc.delete_server(server.id))
            for key in await hc.list_ssh_keys(selector):
                if ours(key.labels):
                    await ignore_missing(hc.delete_ssh_key(key.id))
        except Exception as exc:
            self._say(
                target,
                f"could not delete build resources labelled {selector}: {exc}; "
                "a later `hk8s image build` removes them",
                "warning",
            )

    def _say(self, target: ImageTarget, detail: str, kind: EventKind = "info") -> None:
        """A step as a line of its own (key ``image/<name>/build``, so a live view keeps the
        operation's spinner); a wait also becomes the spinner's detail."""
        key = f"image/{target.name}"
        title = f"create image {target.name}"
        line: EventKind = "info" if kind == "waiting" else kind
        self._reporter.emit(ProgressEvent(line, f"{key}/build", title, detail))
        if kind == "waiting":
            self._reporter.emit(ProgressEvent("waiting", key, title, detail))


def claim_key_name(target: ImageTarget) -> str:
    """``hk8s-build-talos-v1.12.0-amd64-376567988ad3``: one per snapshot target."""
    return f"hk8s-build-{target.name}"


class BuildClaimed(Exception):
    """Another run is building this target: its SSH key holds the claim."""

    def __init__(self, target: ImageTarget, key_id: int, labels: Mapping[str, str]) -> None:
        super().__init__(f"{target.name} is being built by build {labels.get(BUILD_ID_LABEL)}")
        self.target = target
        self.key_id = key_id
        self.labels = dict(labels)


async def _unless_lost(heart: Coroutine[Any, Any, None], work: Coroutine[Any, Any, _T]) -> _T:
    """``work``'s result, unless ``heart`` ends first (it only ends by raising ``ClaimLost``):
    then ``work`` is cancelled and that error raised. Cancelling the caller cancels both."""
    beating = asyncio.ensure_future(heart)
    working = asyncio.ensure_future(work)
    try:
        await asyncio.wait({beating, working}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, beating):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    if working.done() and not working.cancelled():
        return working.result()
    beating.result()  # raises ClaimLost (or what ended the heartbeat)
    raise ClaimLost("the build's claim ended")


async def _adopt(error: ConflictError, found: Sequence[_R], build_id: str) -> _R:
    """The resource a retried create already made: the name is taken by this very build.

    The provider retries a POST that timed out; if the first attempt went through, the retry
    answers ``uniqueness_error``. Names carry the build id, so ours is recognised by label.
    """
    if error.context.get("code") == "uniqueness_error":
        for resource in found:
            if resource.labels.get(BUILD_ID_LABEL) == build_id:
                return resource
    raise error


async def ignore_missing(call: Awaitable[None]) -> None:
    """Await a delete; NotFound is success (already gone: what we wanted)."""
    with contextlib.suppress(NotFoundError):
        await call
