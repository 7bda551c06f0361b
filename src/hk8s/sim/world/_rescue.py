"""Rescue systems of the world: an SSH server per server booted into rescue, on its disk.

``enable_rescue`` tells who may log in (its SSH keys, the root password the API returned);
the next boot consumes it, as the real API documents. ``poweroff``/``reboot`` typed in the
rescue shell reach Hetzner's state as a power-off or a reboot into the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hk8s.sim.rescue import (
    RESCUE_SSH_PORT,
    Machine,
    RescueServer,
    SimulatedDisk,
    loopback_http_get,
)

if TYPE_CHECKING:
    from hk8s.model import Clock
    from hk8s.sim.hcloud import HcloudState, Server

__all__ = ["Rescues"]

log = logging.getLogger(__name__)


class Rescues:
    def __init__(self, state: HcloudState, clock: Clock, disks: dict[int, SimulatedDisk]) -> None:
        self.state = state
        self.clock = clock
        self.disks = disks
        self.servers: dict[int, RescueServer] = {}
        self._logins: dict[int, tuple[list[str], str | None]] = {}
        # ``poweroff``/``reboot`` typed in a shell, still carrying out (see ``close``).
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def enabled(self, server_id: int, keys: list[str], password: str | None) -> None:
        self._logins[server_id] = (keys, password)

    def start(self, server: Server, ip: str) -> None:
        """The server booted into its rescue system: SSH at ``<ip>:10022``."""
        self.stop(server.id)
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        keys, password = self._logins.pop(server.id, ([], None))
        disk = self.disks.setdefault(server.id, SimulatedDisk(server.server_type.disk * 10**9))

        def on_power(kind: str) -> None:  # called from the SSH thread
            # The world may have closed (and its loop with it) while the shell ran.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._spawn_power, server, kind)

        machine = Machine(
            disk=disk,
            arch="amd64" if server.architecture == "x86" else "arm64",
            hostname="rescue",
            http_get=loopback_http_get,
            on_power=on_power,
        )
        try:
            self.servers[server.id] = RescueServer(
                ip, RESCUE_SSH_PORT, machine, authorized_keys=keys, password=password
            ).start()
        except OSError as exc:
            log.warning("rescue system of %s cannot listen on %s: %s", server.name, ip, exc)

    def stop(self, server_id: int) -> None:
        rescue = self.servers.pop(server_id, None)
        if rescue is not None:
            rescue.stop()

    async def close(self) -> None:
        """Stop every SSH server, then cancel and await power changes still under way."""
        self._closed = True
        for server_id in list(self.servers):
            self.stop(server_id)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn_power(self, server: Server, kind: str) -> None:
        if self._closed:
            return
        task = asyncio.ensure_future(self._power(server, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _power(self, server: Server, kind: str) -> None:
        """``poweroff``/``reboot`` typed in the rescue shell: Hetzner sees the server go off."""
        await self.clock.sleep(2.0)
        state = self.state
        if server.id not in state.servers:
            return
        self.stop(server.id)
        if kind == "poweroff":
            server.status, server.in_rescue = "off", False
            state.emit("server_powered_off", server=server)
            return
        state.emit("server_rebooted", server=server)
        await self.clock.sleep(state.durations.reboot)
        # As the API's boot(): rescue was consumed by the previous boot, the disk boots now.
        server.in_rescue, server.rescue_enabled = server.rescue_enabled, False
        server.status = "running"
        state.emit("server_booted", server=server)
