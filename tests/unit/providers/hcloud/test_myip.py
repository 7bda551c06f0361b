"""``fetch_public_ip``: the firewall source ``current`` from a plain-text what-is-my-IP service."""

from __future__ import annotations

import http.server
import threading
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.errors import UnavailableError
from hk8s.providers.hcloud import fetch_public_ip

if TYPE_CHECKING:
    from collections.abc import Iterator


def serve(body: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def good() -> Iterator[str]:
    yield from serve(b"203.0.113.7\n")


@pytest.fixture
def garbage() -> Iterator[str]:
    yield from serve(b"<html>hello</html>")


async def test_reads_the_address_as_plain_text(good: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert await fetch_public_ip(good) == "203.0.113.7"
    monkeypatch.setenv("HK8S_MY_IP_URL", good)
    assert await fetch_public_ip() == "203.0.113.7"


async def test_an_answer_that_is_no_ip_is_refused(garbage: str) -> None:
    with pytest.raises(UnavailableError, match="did not answer with an IP address") as info:
        await fetch_public_ip(garbage)
    assert info.value.hint is not None and "HK8S_MY_IP_URL" in info.value.hint


async def test_unreachable_service_is_unavailable() -> None:
    with pytest.raises(UnavailableError, match="public IP"):
        await fetch_public_ip("http://127.0.0.1:9/", timeout=2.0)
