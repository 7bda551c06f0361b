"""A small HTTP/1.1 server on asyncio streams, for the simulated APIs.

The simulator serves three HTTP APIs (Hetzner Cloud, the image factory, Kubernetes) to real
clients: ``requests`` (hcloud), ``urllib3`` (kubernetes) and ``urllib`` (hk8s itself). They
need keep-alive, ``Content-Length`` and chunked request bodies, chunked streaming responses
(Kubernetes watches), and TLS with optional client certificates. That is all this module does;
routing and semantics live with each API.

>>> async def hello(request: Request) -> Response:
...     return Response.json({"hello": request.path})
>>> # server = await HTTPServer(hello).start("127.0.0.1", 0); server.port -> the bound port
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["HTTPServer", "Handler", "Request", "Response"]

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class Headers(dict[str, str]):
    """Header names folded to lower case."""

    def get_header(self, name: str, default: str = "") -> str:
        return self.get(name.lower(), default)


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    peer: tuple[str, int]
    local: tuple[str, int]
    # The client certificate (DER) when the TLS context asked for one, else None.
    peer_cert_der: bytes | None = None

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A streaming body is sent with chunked transfer encoding and closes the connection.
    stream: AsyncIterator[bytes] | None = None

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        merged = {"Content-Type": "application/json", **(headers or {})}
        return cls(status=status, body=body, headers=merged)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status=status, body=text.encode(), headers={"Content-Type": content_type})


Handler = Callable[[Request], Awaitable[Response]]


class HTTPServer:
    """Serves one ``Handler`` on one address; ``start`` binds, ``close`` stops and waits."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._closing = False
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> HTTPServer:
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, ssl=self._ssl, reuse_address=True
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._closing = True
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        # gather, not a suppress(CancelledError) per task: cancelling close() itself must
        # still cancel its caller.
        await asyncio.gather(*connections, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        self._server = None
        self._closing = False

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await self._read_request(reader, writer)
                if request is None:
                    break
                try:
                    response = await self._handler(request)
                except Exception as exc:  # the simulator must answer, as a real API would
                    response = Response.json(
                        {"error": {"code": "internal_error", "message": repr(exc)}}, status=500
                    )
                keep_alive = request.headers.get_header("connection").lower() != "close"
                # HEAD: the headers of GET, never a body (RFC 9110 9.3.2); a body here would be
                # read as the start of the next response on a kept-alive connection.
                head_only = request.method == "HEAD"
                if not await self._write_response(
                    writer, response, keep_alive=keep_alive, head_only=head_only
                ):
                    break
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        except asyncio.CancelledError:
            # close() cancels open connections. Ending normally matters: asyncio's
            # StreamReaderProtocol calls task.exception() on the handler task, which raises
            # (and logs "Exception in callback") for a task that ended cancelled.
            pass
        finally:
            self._connections.discard(task)
            if self._closing:
                # A polite TLS close waits for the peer's close_notify, up to asyncio's 30 s
                # shutdown timeout, when a client still holds the connection: drop it instead.
                writer.transport.abort()
            else:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise ValueError("request header too large") from None
        if len(head) > MAX_HEADER_BYTES:
            raise ValueError("request header too large")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = Headers()
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            key = name.strip().lower()
            # A repeated field is one comma-separated list (RFC 9110 section 5.3), e.g. the
            # X-Remote-Group per group kube-apiserver's aggregator sends.
            headers[key] = f"{headers[key]},{value.strip()}" if key in headers else value.strip()
        if headers.get_header("expect").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        if headers.get_header("transfer-encoding").lower() == "chunked":
            body = await _read_chunked(reader)
        elif length := int(headers.get_header("content-length", "0") or 0):
            if length > MAX_BODY_BYTES:
                raise ValueError("request body too large")
            body = await reader.readexactly(length)
        split = urlsplit(target)
        peer_cert = None
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is not None:
            peer_cert = ssl_object.getpeercert(binary_form=True)
        return Request(
            method=method.upper(),
            target=target,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            peer=writer.get_extra_info("peername") or ("", 0),
            local=writer.get_extra_info("sockname") or ("", 0),
            peer_cert_der=peer_cert,
        )

    async def _write_response(
        self, writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool, head_only: bool
    ) -> bool:
        reason = (
            HTTPStatus(response.status).phrase
            if response.status in HTTPStatus._value2member_map_
            else ""
        )
        head = [f"HTTP/1.1 {response.status} {reason}"]
        headers = dict(response.headers)
        if response.stream is not None and not head_only:
            headers["Transfer-Encoding"] = "chunked"
            headers["Connection"] = "close"
        else:
            headers["Content-Length"] = str(len(response.body))
            headers.setdefault("Connection", "keep-alive" if keep_alive else "close")
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if head_only or response.stream is None:
            if not head_only:
                writer.write(response.body)
            await writer.drain()
            return True
        try:
            async for chunk in response.stream:
                if chunk:
                    writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        finally:
            aclose = getattr(response.stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        return False


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # Trailers (rare) end with an empty line.
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(parts)
        total += size
        if total > MAX_BODY_BYTES:
            raise ValueError("request body too large")
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
