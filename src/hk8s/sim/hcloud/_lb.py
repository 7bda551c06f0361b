"""Load balancers that work: health checks against targets and a TCP forwarder.

Each load balancer service listens on ``<lb public IPv4>:<listen_port>`` (a loopback address)
and forwards connections round robin to healthy targets, as a Hetzner ``tcp`` service does.
Health is a TCP connect to the target's ``health_check.port`` every ``interval`` seconds,
reported per target and service in ``targets[].health_status`` like the real API.

Simulator deviation: targets are probed and reached on their public IPv4 even with
``use_private_ip`` (private 10.x addresses are not routable on this machine), so a node that
listens on its public IP is reachable through the load balancer either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hk8s.sim.hcloud._views import lb_target_servers

if TYPE_CHECKING:
    from hk8s.sim.hcloud._model import LBService, LoadBalancer, Server
    from hk8s.sim.hcloud._state import HcloudState

__all__ = ["LoadBalancerWorld", "Probe"]

log = logging.getLogger(__name__)

# (server, port) -> healthy?
Probe = Callable[["Server", int], Awaitable[bool]]


async def tcp_probe(server: Server, port: int) -> bool:
    if server.public_ipv4 is None or server.status != "running":
        return False
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(server.public_ipv4, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


class LoadBalancerWorld:
    """Keeps health status and listeners in step with ``state.load_balancers``."""

    def __init__(
        self, state: HcloudState, probe: Probe | None = None, *, tick: float = 5.0
    ) -> None:
        self.state = state
        self.probe = probe or tcp_probe
        self.tick = tick
        self._listeners: dict[tuple[int, int], asyncio.Server] = {}
        self._rr = itertools.count()
        self.listen_errors: dict[tuple[int, int], str] = {}
        self._open: set[asyncio.StreamWriter] = set()

    async def run(self) -> None:
        try:
            while True:
                await self.reconcile()
                await self.state.clock.sleep(self.tick)
        finally:
            await self.close()

    async def reconcile(self) -> None:
        wanted: dict[tuple[int, int], LoadBalancer] = {}
        for lb in list(self.state.load_balancers.values()):
            for service in lb.services:
                wanted[(lb.id, service.listen_port)] = lb
            await self._check(lb)
        for key in set(self._listeners) - set(wanted):
            self._listeners.pop(key).close()
        for key, lb in wanted.items():
            if key not in self._listeners and key not in self.listen_errors:
                await self._listen(lb, key[1])

    async def _check(self, lb: LoadBalancer) -> None:
        servers = lb_target_servers(self.state, lb)
        results: dict[tuple[int, int], str] = {}
        for service in lb.services:
            port = int(service.health_check.get("port", service.destination_port))
            checks = await asyncio.gather(*(self.probe(s, port) for s in servers))
            for server, ok in zip(servers, checks, strict=True):
                results[(server.id, service.listen_port)] = "healthy" if ok else "unhealthy"
        lb.health = results

    async def _listen(self, lb: LoadBalancer, port: int) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._forward(lb, port, reader, writer)

        try:
            server = await asyncio.start_server(handle, lb.public_ipv4, port, reuse_address=True)
        except OSError as exc:  # e.g. a privileged port as non-root
            self.listen_errors[(lb.id, port)] = str(exc)
            log.warning(
                "load balancer %s cannot listen on %s:%s: %s", lb.name, lb.public_ipv4, port, exc
            )
            return
        self._listeners[(lb.id, port)] = server

    def _pick(self, lb: LoadBalancer, service: LBService) -> Server | None:
        healthy = [
            s
            for s in lb_target_servers(self.state, lb)
            if lb.health.get((s.id, service.listen_port)) == "healthy"
        ]
        if not healthy:
            return None
        return healthy[next(self._rr) % len(healthy)]

    async def _forward(
        self,
        lb: LoadBalancer,
        port: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        service = next((s for s in lb.services if s.listen_port == port), None)
        target = self._pick(lb, service) if service else None
        if service is None or target is None or target.public_ipv4 is None:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                target.public_ipv4, service.destination_port
            )
        except OSError:
            writer.close()
            return
        # Tracked so that close() drops established connections too: Python 3.11's
        # asyncio.Server.close() only stops listening.
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open -= {writer, up_writer}

    async def close(self) -> None:
        for server in self._listeners.values():
            server.close()
        self._listeners.clear()
        for writer in list(self._open):
            writer.close()
        self._open.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
