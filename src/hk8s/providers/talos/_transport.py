"""Channels to Talos endpoints, with timeouts, failover and retry while a node boots.

A node that is booting refuses connections, then accepts TCP before its TLS is up, then may
serve its maintenance certificate for a moment: all of that is ``UnavailableError``, retried
with exponential backoff through the injected ``Clock`` for at most ``Timing.retry_attempts``
rounds over every endpoint. Other errors are raised at once: the caller decides.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from grpclib.client import Channel
from grpclib.exceptions import StreamTerminatedError

from hk8s.errors import AuthError, Hk8sError, UnavailableError, UsageError
from hk8s.model.net import rewrite_port
from hk8s.providers.talos._errors import translate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

    from grpclib.client import StreamStreamMethod, UnaryStreamMethod

    from hk8s.model import Clock, Timing

__all__ = ["DEFAULT_PORT", "MIN_TIMEOUT", "Endpoint", "Metadata", "Transport"]

DEFAULT_PORT = 50000
# Every call has a deadline; a scaled Timing (HK8S_TIME_SCALE) never takes it below this many
# wall seconds, which a TLS handshake on a loaded machine needs.
MIN_TIMEOUT = 2.0

Metadata = list[tuple[str, str]]
R = TypeVar("R")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


@dataclass(frozen=True)
class Endpoint:
    """Where to dial: ``host`` or ``host:port`` (``[v6]:port``), port 50000 by default."""

    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        raw = text.strip()
        host, port = raw, DEFAULT_PORT
        if raw.startswith("["):
            inner, _, rest = raw[1:].partition("]")
            host = inner
            if rest.startswith(":"):
                port = _port(rest[1:], text)
        elif raw.count(":") == 1:
            host, _, port_text = raw.partition(":")
            port = _port(port_text, text)
        if not host:
            raise UsageError(f"Talos endpoint {text!r} has no host")
        return cls(host, port)

    def __str__(self) -> str:
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return host if self.port == DEFAULT_PORT else f"{host}:{self.port}"


def _reraise(err: Hk8sError, exc: Exception) -> NoReturn:
    if err is exc:
        raise err
    raise err from exc


def _port(text: str, endpoint: str) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise UsageError(f"Talos endpoint {endpoint!r}: {text!r} is not a port number")


class Transport:
    """One grpclib channel per endpoint (dialled lazily), shared by every client view."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        ssl_context: ssl.SSLContext,
        *,
        insecure: bool,
        timing: Timing,
        clock: Clock,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not endpoints:
            raise UsageError("no Talos endpoint given", hint="pass at least one node address")
        self.endpoints = tuple(endpoints)
        self.insecure = insecure
        self.timing = timing
        self.clock = clock
        self._ssl = ssl_context
        self._environ = environ
        self._channels: dict[Endpoint, Channel] = {}

    @property
    def timeout(self) -> float:
        return max(self.timing.request_timeout, MIN_TIMEOUT)

    def channel(self, endpoint: Endpoint) -> Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            host, port = rewrite_port(endpoint.host, endpoint.port, self._environ)
            channel = Channel(host, port, ssl=self._ssl)
            self._channels[endpoint] = channel
        return channel

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    async def _rounds(self) -> AsyncIterator[int]:
        """Attempt rounds over all endpoints, with exponential backoff between them."""
        for round_no in range(max(1, self.timing.retry_attempts)):
            if round_no:
                await self.clock.sleep(self.timing.retry_delay(round_no))
            yield round_no

    def _error(self, exc: Exception, call: str, target: str | None, ep: Endpoint) -> Hk8sError:
        err = translate(exc, node=target or str(ep), call=call, insecure=self.insecure)
        if err is None:
            raise exc
        return err

    async def _explain(
        self, exc: Exception, call: str, target: str | None, endpoint: Endpoint
    ) -> Hk8sError:
        """The hk8s error for ``exc``, with a lost connection looked into once more.

        With TLS 1.3 the server checks the client certificate after the client considers the
        handshake done, so a refused certificate shows up as a closed connection, which
        grpclib reports as a bare "Connection lost". A fresh TLS handshake + read tells them
        apart: the server's alert (Go's crypto/tls sends one) arrives as ``ssl.SSLError``, and
        a server that closes the connection before sending its HTTP/2 preface (which every
        gRPC server sends first) did not accept us either (Python's TLS servers close without
        an alert)."""
        err = self._error(exc, call, target, endpoint)
        if not isinstance(exc, StreamTerminatedError):
            return err
        host, port = rewrite_port(endpoint.host, endpoint.port, self._environ)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self._ssl), self.timeout
            )
            try:
                first = await asyncio.wait_for(reader.read(1), self.timeout)
            finally:
                writer.close()
        except ssl.SSLError as probe_exc:
            return self._error(probe_exc, call, target, endpoint)
        except (OSError, TimeoutError):
            return err
        if first:
            return err
        who = target or str(endpoint)
        return AuthError(
            f"Talos {call} on {who}: the node closed the connection right after the TLS "
            "handshake: it refused the client certificate"
            + (" (none was sent: insecure mode)" if self.insecure else ""),
            hint="maintenance mode is over for this node: use the cluster's talosconfig"
            if self.insecure
            else "use the talosconfig of this cluster",
            node=who,
        )

    async def retrying(
        self, call: str, target: str | None, attempt: Callable[[Endpoint], Awaitable[R]]
    ) -> tuple[R, Endpoint]:
        """Run ``attempt`` on each endpoint in turn until one answers; back off between rounds."""
        last: UnavailableError | None = None
        async for _ in self._rounds():
            for endpoint in self.endpoints:
                try:
                    return await attempt(endpoint), endpoint
                except Exception as exc:
                    err = await self._explain(exc, call, target, endpoint)
                    if not isinstance(err, UnavailableError):
                        _reraise(err, exc)
                    last = err
        assert last is not None
        raise last

    async def unary(
        self,
        call: str,
        method: Callable[[Channel], Any],
        request: object,
        *,
        metadata: Metadata,
        target: str | None,
        timeout: float | None = None,
    ) -> tuple[Any, Endpoint]:
        """A unary call; returns the reply and the endpoint that answered. ``timeout``: a
        longer deadline for calls that work before they answer (Upgrade)."""
        deadline = self.timeout if timeout is None else max(timeout, MIN_TIMEOUT)

        async def attempt(endpoint: Endpoint) -> Any:
            stub_method = method(self.channel(endpoint))
            return await stub_method(request, timeout=deadline, metadata=metadata)

        return await self.retrying(call, target, attempt)

    async def server_stream(
        self,
        call: str,
        method: Callable[[Channel], UnaryStreamMethod[Req, Resp]],
        request: Req,
        *,
        metadata: Metadata,
        target: str | None,
        timeout: float | None,
    ) -> AsyncIterator[Resp]:
        """Messages of a server stream. Retried while nothing has arrived yet; ``timeout``
        None is for follow-mode streams, which run until the caller stops reading."""
        last: UnavailableError | None = None
        async for _ in self._rounds():
            for endpoint in self.endpoints:
                received = False
                try:
                    stub_method = method(self.channel(endpoint))
                    async with stub_method.open(timeout=timeout, metadata=metadata) as stream:
                        # A follow stream has no deadline, but connecting and sending the
                        # request still must not hang on a node that does not answer.
                        await asyncio.wait_for(
                            stream.send_message(request, end=True), timeout or self.timeout
                        )
                        async for message in stream:
                            received = True
                            yield message
                    return
                except Exception as exc:
                    err = await self._explain(exc, call, target, endpoint)
                    if received or not isinstance(err, UnavailableError):
                        _reraise(err, exc)
                    last = err
        assert last is not None
        raise last

    async def client_stream(
        self,
        call: str,
        method: Callable[[Channel], StreamStreamMethod[Req, Resp] | Any],
        messages: Callable[[], Iterable[Req]],
        *,
        metadata: Metadata,
        target: str | None,
        timeout: float,
    ) -> tuple[Any, Endpoint]:
        """A client-streaming call; ``messages`` is called again for every attempt."""

        async def attempt(endpoint: Endpoint) -> Any:
            stub_method = method(self.channel(endpoint))
            async with stub_method.open(timeout=timeout, metadata=metadata) as stream:
                await stream.send_request()
                for message in messages():
                    await stream.send_message(message)
                await stream.end()
                return await stream.recv_message()

        return await self.retrying(call, target, attempt)
