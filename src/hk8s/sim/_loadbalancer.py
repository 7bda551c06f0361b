"""TCP forwarding on loopback: Hetzner load balancers, and "the machine is gone" for nodes.

``TCPForwarder`` listens on one address and pipes every connection to a target chosen per
connection (``pick``), or closes it at once when there is none (an LB without healthy targets
accepts and resets, like a real one). ``close`` stops listening *and* drops the established
connections; Python 3.11's ``asyncio.Server.close`` leaves those open, which a simulated node
that powers off must not do.

>>> forwarder = TCPForwarder(lambda: ("127.0.0.1", 8443))
>>> # await forwarder.start("127.2.0.1", 6443); ...; await forwarder.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["KubeFrontends", "TCPForwarder"]

Target = tuple[str, int]
_CHUNK = 64 * 1024


class TCPForwarder:
    def __init__(self, pick: Callable[[], Target | None]) -> None:
        self._pick = pick
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.host = ""
        self.port = 0
        self.connections = 0

    async def start(self, host: str, port: int) -> TCPForwarder:
        self._server = await asyncio.start_server(self._handle, host, port, reuse_address=True)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self

    async def close(self) -> None:
        """Stop listening, drop every connection and wait until each handler has ended."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_connections()
        tasks = list(self._tasks)
        if tasks:
            # Closed sockets end the pipes within a few loop iterations; a handler still
            # connecting upstream is cancelled (it ends normally, see ``_handle``).
            _, stuck = await asyncio.wait(tasks, timeout=1.0)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            # Accepted just before close() but started after it: close() no longer waits.
            target = self._pick() if self._server is not None else None
            if target is None:
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*target)
            except OSError:
                return
            self._writers.add(upstream_writer)
            await _pipe_both(reader, writer, upstream_reader, upstream_writer)
        except asyncio.CancelledError:
            # Only close() cancels a handler. It must end normally: asyncio's
            # StreamReaderProtocol calls task.exception() on it, which raises (and logs
            # "Exception in callback") for a task that ended cancelled.
            pass
        finally:
            self._tasks.discard(task)
            for w in (writer, upstream_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(_CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError, RuntimeError):
        pass


async def _pipe_both(
    r1: asyncio.StreamReader,
    w1: asyncio.StreamWriter,
    r2: asyncio.StreamReader,
    w2: asyncio.StreamWriter,
) -> None:
    tasks = [asyncio.ensure_future(_pipe(r1, w2)), asyncio.ensure_future(_pipe(r2, w1))]
    try:
        # Done when either side closes for good (both directions finished or one errored).
        await asyncio.wait(tasks, return_when=asyncio.ALL_COMPLETED)
    finally:
        # Cancelled meanwhile (close()): asyncio.wait leaves its tasks running; end them here
        # rather than leave them pending when the loop closes.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class KubeFrontends:
    """The Kubernetes API of one simulated cluster, reachable at each serving control plane.

    The API server (``hk8s.sim.k8s.ControlPlane``'s kube-apiserver) listens once, on an
    ephemeral port of the cluster endpoint's host; its certificate names that address (the
    load balancer's IP, or the first control plane's) and every control plane's. Each control
    plane whose kube-apiserver runs gets ``<node-ip>:6443`` forwarded there; a Hetzner load
    balancer targeting the control planes then finds them healthy and routes 6443 to them,
    as on the real cloud.
    """

    def __init__(self, internal: Target) -> None:
        self.internal = internal
        self.forwarders: dict[str, TCPForwarder] = {}
        # sync() runs from the world's periodic reconciliation and from Talos hooks (a control
        # plane going down) at once. Each awaits a forwarder's close or start; unserialized,
        # two of them computed the same stale difference and the second pop() raised KeyError
        # (seen in a 3+10 destroy), or both started a forwarder for one address.
        self._lock = asyncio.Lock()
        self._closed = False

    async def sync(self, serving_ips: set[str], port: int = 6443) -> None:
        async with self._lock:
            if self._closed:
                return  # a hook racing the world's close must not listen again
            for ip in set(self.forwarders) - serving_ips:
                await self.forwarders.pop(ip).close()
            for ip in serving_ips - set(self.forwarders):
                try:
                    forwarder = await TCPForwarder(lambda: self.internal).start(ip, port)
                except OSError:
                    continue  # the address is taken (the endpoint host itself): served directly
                self.forwarders[ip] = forwarder

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            forwarders = list(self.forwarders.values())
            self.forwarders.clear()
            for forwarder in forwarders:
                await forwarder.close()
