"""Bugs found in hk8s.sim._http while building the Hetzner simulator, each with its test."""

from __future__ import annotations

import asyncio
import http.client
import logging
from typing import TYPE_CHECKING

from hk8s.sim._http import HTTPServer, Request, Response

if TYPE_CHECKING:
    import pytest


async def hello(request: Request) -> Response:
    return Response.json({"path": request.path})


async def test_head_sends_headers_only_and_keeps_the_connection_usable() -> None:
    server = await HTTPServer(hello).start("127.0.0.1", 0)

    def exchange() -> tuple[str | None, bytes, bytes]:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        conn.request("HEAD", "/a")
        head = conn.getresponse()
        length, head_body = head.getheader("Content-Length"), head.read()
        conn.request("GET", "/b")  # same kept-alive connection
        body = conn.getresponse().read()
        conn.close()
        return length, head_body, body

    try:
        length, head_body, body = await asyncio.to_thread(exchange)
    finally:
        await server.close()
    assert head_body == b"" and length == str(len(b'{"path":"/a"}'))
    assert body == b'{"path":"/b"}'


async def test_close_with_idle_connections_logs_no_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await HTTPServer(hello).start("127.0.0.1", 0)
    _, writer = await asyncio.open_connection(server.host, server.port)
    await asyncio.sleep(0.01)  # the server is now waiting for a request on this connection
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        await server.close()
        await asyncio.sleep(0.01)
    writer.close()
    assert [r for r in caplog.records if r.name == "asyncio"] == []
