"""The Image Factory client over HTTP, against the simulated factory on loopback."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from hk8s.controller import HttpFactoryClient
from hk8s.controller.image._schematic import schematic_request
from hk8s.errors import PermanentError, UnavailableError
from hk8s.sim.factory import ImageFactory, Schematic, schematic_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def factory() -> AsyncIterator[ImageFactory]:
    server = await ImageFactory().start("127.0.0.1", 0)
    yield server
    await server.close()


async def test_post_schematics_returns_the_factory_id(factory: ImageFactory) -> None:
    body = schematic_request(["siderolabs/qemu-guest-agent"])
    sid = await HttpFactoryClient().create_schematic(factory.url + "/", body)
    assert sid == schematic_id(Schematic(extensions=("siderolabs/qemu-guest-agent",)))


async def test_a_refused_schematic_is_permanent_with_a_hint(factory: ImageFactory) -> None:
    with pytest.raises(PermanentError) as info:
        await HttpFactoryClient().create_schematic(factory.url, b'{"customisation": {}}')
    assert "HTTP 400" in str(info.value)
    assert info.value.hint and "talos.extensions" in info.value.hint


async def test_an_unreachable_factory_is_retryable_with_a_hint() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UnavailableError) as info:
        await HttpFactoryClient(timeout=2).create_schematic(f"http://127.0.0.1:{port}", b"{}")
    assert info.value.retryable
    assert info.value.hint and "talos.image_factory" in info.value.hint
