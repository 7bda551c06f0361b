"""The rules the simulated cloud controllers copy from upstream, checked alone: load balancer
names, volume sizes and labels, the egress proxy's routing, repeated request headers."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from hk8s.sim._http import HTTPServer, Request, Response
from hk8s.sim.k8s import ClusterNetwork
from hk8s.sim.k8s._ccm_lb import default_name
from hk8s.sim.k8s._csi import _label_value, volume_size_gb

if TYPE_CHECKING:
    from pathlib import Path


def test_load_balancer_names_follow_cloud_providers_default() -> None:
    # "a" + the UID without dashes, cut to 32 characters (k8s.io/cloud-provider cloud.go).
    assert (
        default_name("0f6a3c5e-1d2b-4c3d-9e8f-0a1b2c3d4e5f") == "a0f6a3c5e1d2b4c3d9e8f0a1b2c3d4e5"
    )


@pytest.mark.parametrize(
    ("quantity", "gb"),
    [("1Gi", 10), ("10Gi", 10), ("10G", 10), ("11Gi", 11), ("10500Mi", 11), ("100Gi", 100),
     ("1e11", 94), ("0", 10)],
)  # fmt: skip
def test_volume_sizes_are_whole_gib_of_at_least_ten(quantity: str, gb: int) -> None:
    assert volume_size_gb(quantity) == gb


def test_a_malformed_quantity_is_refused() -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        volume_size_gb("ten gigs")


def test_long_label_values_keep_their_end_as_the_driver_does() -> None:
    name = "a-very-" + "long-" * 20 + "claim"
    cut = _label_value(name)
    assert len(cut) <= 63 and name.endswith(cut) and cut[0].isalnum()
    assert _label_value("data") == "data"


async def test_the_egress_proxy_routes_pod_addresses_and_passes_others(tmp_path: Path) -> None:
    async def whoami(request: Request) -> Response:
        return Response.text(f"{request.local[1]}")

    pod = await HTTPServer(whoami).start("127.0.0.1", 0)
    other = await HTTPServer(whoami).start("127.0.0.1", 0)
    network = ClusterNetwork(tmp_path / "egress.sock")
    await network.start()
    try:
        pod_port = int(pod.url.rsplit(":", 1)[1])
        other_port = int(other.url.rsplit(":", 1)[1])
        network.route("10.244.3.9", 10250, ("127.0.0.1", pod_port))

        async def through(target: str) -> str:
            reader, writer = await asyncio.open_unix_connection(str(tmp_path / "egress.sock"))
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            status = await reader.readline()
            if b" 200 " not in status:
                writer.close()
                return status.decode().strip()
            while (await reader.readline()) != b"\r\n":  # the proxy's (empty) headers
                pass
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            body = (await reader.readexactly(length)).decode()
            writer.close()
            return body

        assert await through("10.244.3.9:10250") == str(pod_port)
        assert await through(f"127.0.0.1:{other_port}") == str(other_port)
        # Unrouted, the pod address is dialled as it is; nothing answers there.
        network.route("10.244.3.9", 10250, ("127.0.0.1", 1))
        assert (await through("10.244.3.9:10250")).startswith("HTTP/1.1 502")
        network.unroute("10.244.3.9", 10250)
    finally:
        await network.stop()
        await pod.close()
        await other.close()
    config = network.write_config(tmp_path / "egress.yaml").read_text()
    assert "proxyProtocol: HTTPConnect" in config and str(tmp_path / "egress.sock") in config


async def test_repeated_request_headers_arrive_as_one_list() -> None:
    seen: list[str] = []

    async def record(request: Request) -> Response:
        seen.append(request.headers.get_header("x-remote-group"))
        return Response.text("ok")

    server = await HTTPServer(record).start("127.0.0.1", 0)
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Remote-Group: system:masters\r\n"
            b"X-Remote-Group: system:authenticated\r\nConnection: close\r\n\r\n"
        )
        await reader.read()
        writer.close()
    finally:
        await server.close()
    assert seen == ["system:masters,system:authenticated"]
