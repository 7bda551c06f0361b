"""A rescue system with a real SSH server, and the image factory it downloads from."""

from __future__ import annotations

import asyncio
import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from hk8s.sim.factory import ImageFactory
from hk8s.sim.rescue import Machine, RescueServer, SimulatedDisk

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Rescue:
    server: RescueServer
    disk: SimulatedDisk
    key: paramiko.PKey
    password: str
    factory_url: str
    power: list[str]

    def client(
        self, *, password: str | None = None, key: paramiko.PKey | None = None
    ) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            self.server.host,
            port=self.server.port,
            username="root",
            pkey=None if password else (key or self.key),
            password=password,
            look_for_keys=False,
            allow_agent=False,
            timeout=5,
        )
        return client


def ed25519_key() -> paramiko.PKey:
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))


@pytest.fixture(scope="module")
def factory_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    factory = asyncio.run_coroutine_threadsafe(ImageFactory().start("127.0.0.1", 0), loop).result()
    yield factory.url
    asyncio.run_coroutine_threadsafe(factory.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


@pytest.fixture
def rescue(factory_url: str) -> Iterator[Rescue]:
    key = ed25519_key()
    power: list[str] = []
    disk = SimulatedDisk(40 * 10**9, os_name="ubuntu-24.04")
    machine = Machine(disk=disk, on_power=power.append)
    public = f"{key.get_name()} {key.get_base64()} test@hk8s"
    server = RescueServer(
        "127.0.0.1", 0, machine, authorized_keys=[public], password="s3cret"
    ).start()
    yield Rescue(server, disk, key, "s3cret", factory_url, power)
    server.stop()
