"""An asyncio client of kube-apiserver for the simulated machines (kubelets, CCM, CSI, Helm).

Real kubelets and controllers are API clients of the control plane; so are the simulator's
stand-ins. This is the small part of client-go they need: JSON requests over HTTP/1.1 with a
client certificate and kept-alive connections, the four patch types, and watches read as
line-delimited JSON events (``watch=1``; a ``410 Gone`` ends the watch with ``WatchExpired`` so
the caller relists, as an informer does).

>>> api = KubeClient("https://127.3.0.10:40123", ca="pki/ca.crt",
...                  cert="pki/machines.crt", key="pki/machines.key")
>>> node = await api.get("/api/v1/nodes/demo-cp-1")
>>> await api.patch("/api/v1/nodes/demo-cp-1/status", {"status": {...}}, kind="strategic")
>>> async for kind, obj in api.watch("/api/v1/pods", fieldSelector="spec.nodeName=demo-w-1"):
...     ...
>>> await api.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["ApiError", "KubeClient", "WatchExpired"]

PatchKind = Literal["merge", "strategic", "json", "apply"]
_PATCH_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
_TIMEOUT = 30.0
_IDLE = 8


class ApiError(Exception):
    """A ``Status`` the API server answered with: ``code``, ``reason`` and ``message``."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410): list again and watch from there."""


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KubeClient:
    def __init__(
        self,
        url: str,
        *,
        ca: str,
        cert: str,
        key: str,
        online: Callable[[], bool] = lambda: True,
    ) -> None:
        # ``online()`` false: the API server has no etcd behind it (every member wiped, before
        # a restore); requests and new watches fail as they would against it.
        self._online = online
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 443
        self._ssl = ssl.create_default_context(cafile=ca)
        self._ssl.load_cert_chain(cert, key)
        self._idle: list[_Conn] = []

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    # --- verbs ---------------------------------------------------------------------------

    async def get(self, path: str, **query: str) -> dict[str, Any]:
        return await self.request("GET", path, query=query)

    async def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.get(path)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=obj)

    async def replace(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", path, body=obj)

    async def patch(
        self,
        path: str,
        patch: dict[str, Any] | list[Any],
        *,
        kind: PatchKind = "merge",
        field_manager: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        query = {"fieldManager": field_manager} if field_manager else {}
        if force:
            query["force"] = "true"
        return await self.request(
            "PATCH", path, query=query, body=patch, content_type=_PATCH_TYPES[kind]
        )

    async def delete(self, path: str, **query: str) -> dict[str, Any] | None:
        try:
            return await self.request("DELETE", path, query=query)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def text(self, path: str, **query: str) -> str:
        status, body = await self._exchange("GET", path, query, None, "application/json")
        if status >= 400:
            raise _error(status, body)
        return body.decode(errors="replace")

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        status, raw = await self._exchange(method, path, query or {}, body, content_type)
        if status >= 400:
            raise _error(status, raw)
        data = json.loads(raw) if raw else {}
        assert isinstance(data, dict)
        return data

    async def watch(
        self, path: str, *, resource_version: str = "", timeout: float = 300.0, **query: str
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` events; ends when the server ends the watch (``timeoutSeconds``)."""
        params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": str(int(timeout))}
        if resource_version:
            params["resourceVersion"] = resource_version
        params.update(query)
        self._check_online()
        reader, writer = await self._connect()
        try:
            await self._send(writer, "GET", path, params, None, "application/json")
            status, headers = await _read_head(reader)
            if status >= 400:
                raise _error(status, await _read_body(reader, headers))
            async for line in _chunked_lines(reader):
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired(obj.get("message", ""))
                    raise ApiError(
                        obj.get("code", 500), obj.get("reason", ""), obj.get("message", "")
                    )
                yield str(event.get("type")), obj
        finally:
            writer.close()

    # --- the wire ------------------------------------------------------------------------

    def _check_online(self) -> None:
        if not self._online():
            raise ConnectionRefusedError("the API server has no etcd (its keyspace is lost)")

    async def _connect(self) -> _Conn:
        return await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, ssl=self._ssl), _TIMEOUT
        )

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        content_type: str,
    ) -> None:
        target = path + ("?" + urlencode(query) if query else "")
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: application/json\r\nUser-Agent: hk8s-sim\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        await writer.drain()

    async def _exchange(
        self, method: str, path: str, query: dict[str, str], body: Any, content_type: str
    ) -> tuple[int, bytes]:
        self._check_online()
        for attempt in (0, 1):
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await self._connect()
            try:
                await self._send(writer, method, path, query, body, content_type)
                status, headers = await asyncio.wait_for(_read_head(reader), _TIMEOUT)
                raw = await asyncio.wait_for(_read_body(reader, headers), _TIMEOUT)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and attempt == 0:  # the server closed an idle connection: once more
                    continue
                raise ConnectionError(f"{method} {path}: {exc}") from exc
            except BaseException:
                writer.close()
                raise
            if headers.get("connection", "").lower() == "close" or len(self._idle) >= _IDLE:
                writer.close()
            else:
                self._idle.append((reader, writer))
            return status, raw
        raise AssertionError("unreachable")


def _error(status: int, raw: bytes) -> ApiError:
    with contextlib.suppress(ValueError):
        body = json.loads(raw)
        if isinstance(body, dict) and body.get("kind") == "Status":
            return ApiError(status, str(body.get("reason", "")), str(body.get("message", "")))
    return ApiError(status, "", raw.decode(errors="replace")[:500])


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    status = int(line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while chunk := await _read_chunk(reader):
            parts.append(chunk)
        return b"".join(parts)
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
    data = await reader.readexactly(size) if size else b""
    await reader.readline()  # the CRLF after each chunk (and after the last, empty one)
    return data


async def _chunked_lines(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    buffer = b""
    while chunk := await _read_chunk(reader):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
