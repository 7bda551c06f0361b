"""Deadlines, retries while a node boots, endpoint failover, HK8S_PORT_MAP. No sleeping."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.errors import TransientAPIError, UnavailableError
from hk8s.model import ManualClock, Timing
from hk8s.providers.talos import TalosClient

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

FAST = Timing(request_timeout=5.0, retry_initial=1.0, retry_max=4.0, retry_attempts=4)


class BootingClock(ManualClock):
    """A manual clock under which the node comes up during the n-th backoff sleep."""

    def __init__(self, boot_during: int, boot: Callable[[], Awaitable[object]]) -> None:
        super().__init__()
        self._boot_during = boot_during
        self._boot = boot

    async def sleep(self, seconds: float) -> None:
        if len(self.slept) + 1 == self._boot_during:
            await self._boot()
        await super().sleep(seconds)


async def test_a_node_that_starts_late_is_retried_with_backoff(
    talos_server: Any, free_ip: str
) -> None:
    started: list[Any] = []

    async def boot() -> None:
        started.append(await talos_server(mtls=False, ip=free_ip))

    clock = BootingClock(boot_during=2, boot=boot)
    async with TalosClient([free_ip], insecure=True, timing=FAST, clock=clock) as talos:
        (version,) = await talos.version()
    assert version.unwrap().tag == "v1.11.5"
    assert clock.slept == [1.0, 2.0]  # refused, refused (booting during the 2nd wait), answer
    assert clock.now() == 3.0
    assert len(started[0].fake.calls) == 1


async def test_streams_are_retried_until_the_first_message(
    talos_server: Any, pki: Any, free_ip: str
) -> None:
    from hk8s.providers.talos import TalosCredentials

    async def boot() -> None:
        await talos_server(mtls=True, ip=free_ip)

    credentials = TalosCredentials(
        ca=pki.ca.crt_pem, crt=pki.client.crt_pem, key=pki.client.key_pem()
    )
    clock = BootingClock(boot_during=1, boot=boot)
    async with TalosClient([free_ip], credentials=credentials, timing=FAST, clock=clock) as talos:
        assert "kind: Config" in await talos.kubeconfig()
    assert clock.slept == [1.0]


async def test_retries_are_bounded_and_back_off_to_the_cap(free_ip: str) -> None:
    clock = ManualClock()
    timing = Timing(retry_initial=1.0, retry_max=4.0, retry_attempts=6)
    async with TalosClient([free_ip], insecure=True, timing=timing, clock=clock) as talos:
        with pytest.raises(UnavailableError, match=free_ip) as err:
            await talos.version()
    assert clock.slept == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert err.value.retryable


async def test_the_next_endpoint_is_tried_before_backing_off(
    talos_server: Any, free_ip: str
) -> None:
    node = await talos_server(mtls=False)
    clock = ManualClock()
    async with TalosClient([free_ip, node.ip], insecure=True, timing=FAST, clock=clock) as talos:
        (version,) = await talos.version()
    assert version.node == node.ip
    assert clock.slept == []


async def test_a_node_that_does_not_answer_times_out(talos_server: Any) -> None:
    node = await talos_server(mtls=False)
    node.fake.hang = True
    clock = ManualClock()
    timing = Timing(request_timeout=0.01, retry_attempts=4)  # floored to MIN_TIMEOUT (2 s)
    async with TalosClient([node.ip], insecure=True, timing=timing, clock=clock) as talos:
        with pytest.raises(TransientAPIError, match="timed out"):
            await talos.version()
    assert clock.slept == []  # a timeout is the caller's to retry: it already waited
    assert len(node.fake.calls) == 1


async def test_tls_not_up_yet_is_unavailable(free_ip: str) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # TCP is up, TLS is not: the node is still booting

    server = await asyncio.start_server(hang_up, free_ip, 50000)
    clock = ManualClock()
    try:
        async with TalosClient([free_ip], insecure=True, timing=FAST, clock=clock) as talos:
            with pytest.raises(UnavailableError):
                await talos.version()
    finally:
        server.close()
        await server.wait_closed()
    assert clock.slept == [1.0, 2.0, 4.0]


async def test_port_map_redirects_the_talos_port(talos_server: Any, free_ip: str) -> None:
    node = await talos_server(mtls=False, ip=free_ip, port=15000)
    env = {"HK8S_PORT_MAP": "22=10022,50000=15000"}
    async with TalosClient([free_ip], insecure=True, timing=FAST, environ=env) as talos:
        (version,) = await talos.version()
    assert version.ok and len(node.fake.calls) == 1
    clock = ManualClock()
    async with TalosClient([free_ip], insecure=True, timing=FAST, clock=clock, environ={}) as talos:
        with pytest.raises(UnavailableError):
            await talos.version()  # nothing listens on 50000 there


async def test_follow_streams_still_time_out_while_connecting(free_ip: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts TCP, never speaks TLS

    server = await asyncio.start_server(silent, free_ip, 50000)
    timing = Timing(request_timeout=0.01)  # floored to MIN_TIMEOUT (2 s)
    try:
        async with TalosClient([free_ip], insecure=True, timing=timing) as talos:
            with pytest.raises(TransientAPIError, match="timed out"):
                async for _ in talos.events():
                    pass
    finally:
        server.close()
        await server.wait_closed()
