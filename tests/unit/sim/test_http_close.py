"""``HTTPServer.close`` must not wait on clients that still hold TLS connections.

Seen in the Kubernetes simulator's tests: a kubernetes-client connection kept alive in another
thread made every ``close`` take asyncio's 30 s TLS shutdown timeout, waiting for a
close_notify the idle client never sends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from typing import TYPE_CHECKING

from hk8s.pki import create_maintenance_cert, to_pkcs8_pem
from hk8s.sim._http import HTTPServer, Request, Response

if TYPE_CHECKING:
    from pathlib import Path


async def ok(request: Request) -> Response:
    return Response.json({"ok": True})


async def test_close_does_not_wait_for_an_idle_tls_client(tmp_path: Path) -> None:
    cert = create_maintenance_cert(now=dt.datetime.now(dt.UTC), ip_addresses=["127.0.0.1"])
    (tmp_path / "crt.pem").write_bytes(cert.cert_pem)
    (tmp_path / "key.pem").write_bytes(to_pkcs8_pem(cert.key_pem))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "crt.pem", tmp_path / "key.pem")
    server = await HTTPServer(ok, ssl_context=server_ctx).start("127.0.0.1", 0)

    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE

    def hold_a_connection() -> ssl.SSLSocket:
        sock = client_ctx.wrap_socket(socket.create_connection((server.host, server.port)))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: sim\r\n\r\n")
        received = b""
        while not received.endswith(b'{"ok":true}'):
            received += sock.recv(4096)
        return sock  # kept open and never read again, like a pooled idle connection

    sock = await asyncio.to_thread(hold_a_connection)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await server.close()
    finally:
        sock.close()
    # Before the fix this took 30 s; anything near that is the bug coming back.
    assert loop.time() - started < 5
