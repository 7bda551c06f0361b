"""The simulated project's state, its action engine and its events.

``HcloudState`` owns every resource, hands out ids and addresses, runs actions on the
simulator's clock (``running`` with progress, then ``success`` or ``error``), keeps servers
``locked`` while an action runs on them, and tells listeners about what happened to servers
and images (see the package docstring for the hook API).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hk8s.model.clock import Clock, ScaledClock
from hk8s.sim.hcloud._errors import ApiError
from hk8s.sim.hcloud._faults import FaultInjector
from hk8s.sim.hcloud._model import (
    Action,
    Firewall,
    Image,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrimaryIP,
    Server,
    SSHKey,
    Volume,
)

__all__ = ["Durations", "HcloudState", "Listener", "SimEvent"]

log = logging.getLogger(__name__)

# How often (simulated seconds) an action held by a fault looks whether it may finish.
HELD_POLL = 1.0


@dataclass(frozen=True)
class Durations:
    """How long things take, in simulated seconds (roughly what api.hetzner.cloud shows)."""

    create_server: float = 10.0
    start_server: float = 8.0
    poweron: float = 5.0
    poweroff: float = 3.0
    shutdown: float = 6.0
    reboot: float = 8.0
    reset: float = 5.0
    rescue: float = 2.0
    create_image: float = 30.0
    rebuild: float = 20.0
    delete_server: float = 4.0
    network_change: float = 2.0
    change_type: float = 15.0
    # Firewall, load balancer, primary IP and image actions.
    short: float = 1.0


@dataclass(frozen=True)
class SimEvent:
    """Something other parts of the simulated world react to.

    kinds: ``server_created``, ``server_booted`` (came up running; ``server.in_rescue`` says
    whether into the rescue system), ``server_powered_off``, ``server_rebooted``,
    ``server_reset``, ``server_deleted``, ``rescue_enabled``, ``rescue_disabled``,
    ``image_create_requested``, ``image_created``, ``server_rebuilt``, ``server_attached``.
    """

    kind: str
    server: Server | None = None
    image: Image | None = None
    action: Action | None = None
    details: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[SimEvent], Awaitable[None] | None]


class ActionFailure(Exception):
    """Raised by an action's completion step to end the action with status ``error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class HcloudState:
    """Every resource of the simulated project, plus the engine that moves time on."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        durations: Durations | None = None,
        faults: FaultInjector | None = None,
        server_ips: str = "127.1.0.0/16",
        lb_ips: str = "127.2.0.0/16",
    ) -> None:
        self.clock: Clock = clock or ScaledClock(1.0)
        self.durations = durations or Durations()
        self.faults = faults or FaultInjector()
        self.epoch = time.time() - self.clock.now()
        self._ids = itertools.count(1000)
        self._action_ids = itertools.count(100_000)
        self.servers: dict[int, Server] = {}
        self.images: dict[int, Image] = {}
        self.networks: dict[int, Network] = {}
        self.firewalls: dict[int, Firewall] = {}
        self.load_balancers: dict[int, LoadBalancer] = {}
        self.placement_groups: dict[int, PlacementGroup] = {}
        self.ssh_keys: dict[int, SSHKey] = {}
        self.primary_ips: dict[int, PrimaryIP] = {}
        self.volumes: dict[int, Volume] = {}
        self.actions: dict[int, Action] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        # Loopback ranges for public IPs: Linux routes all of 127/8 to lo, so anything can
        # bind them without root. Separate ranges keep parallel simulators apart.
        self._server_ips = _host_pool(server_ips)
        self._lb_ips = _host_pool(lb_ips)
        self._v6 = itertools.count(1)

    # ----------------------------------------------------------------- ids, time, addresses
    def next_id(self) -> int:
        return next(self._ids)

    def now(self) -> float:
        return self.clock.now()

    def iso(self, at: float | None) -> str | None:
        """ISO 8601 in UTC, as the API writes timestamps; simulated time runs at speed."""
        if at is None:
            return None
        return datetime.fromtimestamp(self.epoch + at, UTC).isoformat(timespec="seconds")

    def allocate_server_ip(self) -> str:
        return next(self._server_ips)

    def allocate_lb_ip(self) -> str:
        return next(self._lb_ips)

    def allocate_ipv6(self) -> str:
        # 2001:db8::/32 is the documentation prefix (RFC 3849): never routable.
        return f"2001:db8:{next(self._v6):x}::/64"

    def allocate_lb_ipv6(self) -> str:
        """A load balancer's IPv6 is one address (openapi.json: "IP address (v6) of this Load
        Balancer", example ``2001:db8::1``), not a server's /64."""
        return self.allocate_ipv6().removesuffix("/64") + "1"

    @staticmethod
    def password() -> str:
        return secrets.token_urlsafe(12)

    # ------------------------------------------------------------------------ events
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every ``SimEvent``; returns an unsubscribe function.

        Listeners run on the simulator's event loop; a coroutine listener runs as a task.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, kind: str, **kwargs: Any) -> None:
        event = SimEvent(kind, **kwargs)
        for listener in list(self._listeners):
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    self.spawn(_await(result))
            except Exception:  # a broken listener must not break the API
                log.exception("simulator listener failed on %s", kind)

    # ------------------------------------------------------------------------- tasks
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ----------------------------------------------------------------------- actions
    def start_action(
        self,
        command: str,
        resources: Iterable[tuple[int, str]],
        duration: float,
        *,
        lock: Iterable[Server] = (),
        done: Callable[[Action], Awaitable[None] | None] | None = None,
        held: Callable[[], bool] | None = None,
    ) -> Action:
        """Start an action that finishes after ``duration`` simulated seconds.

        ``done`` runs at the end and may raise ``ActionFailure``; an injected action fault
        ends the action with an error instead (and ``done`` does not run). Servers in ``lock``
        report ``locked: true`` until the action ends. ``held()`` keeps it running for as long
        as it answers true (a server stuck in "starting" while a ``never_running`` fault
        names it: clearing the fault lets it finish, as Hetzner's support unsticks one).
        """
        action = Action(
            id=next(self._action_ids),
            command=command,
            resources=list(resources),
            started=self.now(),
            duration=duration,
        )
        self.actions[action.id] = action
        locked = list(lock)
        for server in locked:
            server.lock_count += 1
        self.spawn(self._run(action, locked, done, held))
        return action

    def finished_action(self, command: str, resources: Iterable[tuple[int, str]]) -> Action:
        """An action that completed at once (e.g. a firewall change with nothing to apply)."""
        now = self.now()
        action = Action(next(self._action_ids), command, list(resources), now, 0.0)
        action.status, action.finished = "success", now
        self.actions[action.id] = action
        return action

    async def _run(
        self,
        action: Action,
        locked: list[Server],
        done: Callable[[Action], Awaitable[None] | None] | None,
        held: Callable[[], bool] | None,
    ) -> None:
        try:
            while held is not None and held():
                await self.clock.sleep(HELD_POLL)
            await self.clock.sleep(action.duration)
            fault = self.faults.action_error(action.command)
            if fault is not None:
                action.status, action.error = "error", fault
            else:
                try:
                    result = done(action) if done else None
                    if inspect.isawaitable(result):
                        await result
                    action.status = "success"
                except ActionFailure as exc:
                    action.status, action.error = "error", (exc.code, exc.message)
            action.finished = self.now()
        finally:
            for server in locked:
                server.lock_count = max(0, server.lock_count - 1)

    def check_limit(self, collection: str) -> None:
        """403 ``resource_limit_exceeded`` when a project limit (``FaultSpec.limits``) is hit.

        Shape from the reference's example: ``details.limits[{"name": "project_limit"}]``.
        """
        limit = self.faults.spec.limits.get(collection)  # type: ignore[call-overload]
        if limit is not None and len(getattr(self, collection)) >= limit:
            raise ApiError(
                "resource_limit_exceeded",
                f"project limit exceeded: at most {limit} {collection}",
                details={"limits": [{"name": "project_limit"}]},
            )

    def busy(self, resource_id: int, kind: str) -> bool:
        """Whether an action on this resource is still running."""
        return any(
            a.status == "running" and (resource_id, kind) in a.resources
            for a in self.actions.values()
        )

    def progress(self, action: Action) -> int:
        if action.status != "running":
            return 100
        if action.duration <= 0:
            return 0
        return min(99, int(100 * (self.now() - action.started) / action.duration))

    # --------------------------------------------------------------------- lookups
    def servers_in_placement_group(self, group_id: int) -> list[Server]:
        return [s for s in self.servers.values() if s.placement_group_id == group_id]

    def volumes_of(self, server_id: int) -> list[Volume]:
        return [v for v in self.volumes.values() if v.server_id == server_id]

    def servers_in_network(self, network_id: int) -> list[Server]:
        return [s for s in self.servers.values() if network_id in s.private_net]

    def lbs_in_network(self, network_id: int) -> list[LoadBalancer]:
        return [lb for lb in self.load_balancers.values() if network_id in lb.private_net]

    def used_private_ips(self, network_id: int) -> set[str]:
        used = {s.private_net[network_id] for s in self.servers_in_network(network_id)}
        used |= {lb.private_net[network_id] for lb in self.lbs_in_network(network_id)}
        return used

    def allocate_private_ip(self, network: Network, zone: str, wanted: str | None) -> str | None:
        """The next free host address of a subnet in ``zone`` (from .2, .1 is the gateway)."""
        used = self.used_private_ips(network.id)
        for subnet in network.subnets:
            if subnet.network_zone != zone:
                continue
            net = ipaddress.ip_network(subnet.ip_range)
            if wanted is not None:
                addr = ipaddress.ip_address(wanted)
                if addr in net and wanted not in used and addr != next(net.hosts()):
                    return wanted
                continue
            for host in itertools.islice(net.hosts(), 1, None):
                if str(host) not in used:
                    return str(host)
        return None


def _host_pool(cidr: str) -> Iterator[str]:
    """Loopback addresses for public IPs; skips .0, .1 and .255 so none looks special."""
    for host in ipaddress.ip_network(cidr).hosts():
        if int(host) & 0xFF not in (0, 1, 255):
            yield str(host)


async def _await(result: Awaitable[None]) -> None:
    try:
        await result
    except Exception:
        log.exception("simulator listener task failed")
