"""How the API server reaches pods: an HTTP CONNECT proxy on a Unix socket (its egress selector).

kube-apiserver dials pods and Services' endpoints itself for aggregated APIs (metrics.k8s.io
goes to the metrics-server pod's endpoint, ``--enable-aggregator-routing``), admission
webhooks and the ``proxy`` subresources. EndpointSlices may not hold loopback addresses
(``ValidateEndpointIP``: "may not be in the loopback range"), so the simulated pods get
addresses from the cluster's pod CIDR while they really listen on loopback. Real clusters
whose API servers cannot route to pods solve the same problem with the egress selector and
the Konnectivity proxy (KEP-1281); the world does the same: ``--egress-selector-config-file``
sends the ``cluster`` egress through this HTTP CONNECT proxy, which maps a pod address to
where the simulated pod listens and dials every other address as asked (kubelets).

>>> network = ClusterNetwork(folder / "egress.sock"); await network.start()
>>> network.route("10.244.1.7", 10250, ("127.0.0.1", 41234))
>>> ControlPlane(..., egress_selector=network.write_config(folder / "egress.yaml"))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["ClusterNetwork"]

log = logging.getLogger(__name__)
_CHUNK = 64 * 1024
_DIAL_TIMEOUT = 10.0


class ClusterNetwork:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._routes: dict[tuple[str, int], tuple[str, int]] = {}
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    def route(self, address: str, port: int, to: tuple[str, int]) -> None:
        """Connections to ``address:port`` reach ``to`` (where the simulated pod listens)."""
        self._routes[(address, port)] = to

    def unroute(self, address: str, port: int) -> None:
        self._routes.pop((address, port), None)

    def write_config(self, path: Path) -> Path:
        """The EgressSelectorConfiguration that sends the ``cluster`` egress here."""
        path.write_text(
            "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\n"
            "egressSelections:\n- name: cluster\n  connection:\n    proxyProtocol: HTTPConnect\n"
            f"    transport:\n      uds:\n        udsName: {self.socket_path}\n"
        )
        return path

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.socket_path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(OSError):
            self.socket_path.unlink()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            await self._tunnel(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            log.debug("egress tunnel: %s", exc)
        finally:
            writer.close()
            if task is not None:
                self._conns.discard(task)

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode("latin-1").split()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        if len(request) < 2 or request[0] != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        host, _, port = request[1].rpartition(":")
        host = host.strip("[]")
        target = self._routes.get((host, int(port)), (host, int(port)))
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*target), _DIAL_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            writer.write(f"HTTP/1.1 502 Bad Gateway\r\n\r\n{exc}".encode())
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        # Either side ending ends the tunnel (TLS above it has its own close_notify).
        pipes = {
            asyncio.ensure_future(_pipe(reader, up_writer)),
            asyncio.ensure_future(_pipe(up_reader, writer)),
        }
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(_CHUNK):
        writer.write(data)
        await writer.drain()
