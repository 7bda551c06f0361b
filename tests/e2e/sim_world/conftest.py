"""A whole simulated world, and the clients its user has: hcloud, paramiko, Talos, kubernetes."""

from __future__ import annotations

import asyncio
import inspect
import io
from typing import TYPE_CHECKING, Any

import hcloud
import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

import _reference  # type: ignore[import-not-found]
from hk8s.errors import Hk8sError
from hk8s.model.net import rewrite_port
from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

SPEED = 100.0


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with World.start(speed=SPEED) as running:
        yield running


def hcloud_client(world: World) -> hcloud.Client:
    env = world.env()
    return hcloud.Client(
        token=env["HCLOUD_TOKEN"], api_endpoint=env["HCLOUD_ENDPOINT"], poll_interval=0.05
    )


def ssh_key() -> tuple[paramiko.PKey, str]:
    """An ephemeral ed25519 key and its OpenSSH public line, as hk8s' image build makes."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    key = paramiko.Ed25519Key(file_obj=io.StringIO(pem.decode()))
    return key, f"{key.get_name()} {key.get_base64()} hk8s-e2e"


def ssh(
    world: World, ip: str, *, key: paramiko.PKey | None = None, password: str | None = None
) -> paramiko.SSHClient:
    """Connect to ``ip:22`` the way hk8s does: through ``HK8S_PORT_MAP``."""
    host, port = rewrite_port(ip, 22, world.env())
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        host, port=port, username="root", pkey=key, password=password,
        look_for_keys=False, allow_agent=False, timeout=10,
    )  # fmt: skip
    return client


async def run(client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
    def blocking() -> tuple[int, str, str]:
        _, out, err = client.exec_command(command, timeout=30)
        code = out.channel.recv_exit_status()
        return code, out.read().decode(), err.read().decode()

    return await asyncio.to_thread(blocking)


async def wait_action(action: Any) -> None:
    await asyncio.to_thread(action.wait_until_finished, max_retries=5000)


async def create_server(client: hcloud.Client, **kwargs: Any) -> Any:
    """Create a server and wait for it to run (its create and start actions)."""
    created = await asyncio.to_thread(client.servers.create, **kwargs)
    for action in [created.action, *(created.next_actions or [])]:
        await wait_action(action)
    return created.server


BUNDLE = _reference.REFERENCE / "talos" / "secrets.example.yaml"


def talos_config(endpoint: str, hostname: str, pool: str = "cp") -> bytes:
    """A machine config as hk8s renders it (example secrets: fast, and CAs are fixed)."""
    from hk8s.config import parse_config
    from hk8s.machineconfig import render_machine_config
    from hk8s.pki import load_secrets

    cluster = parse_config(
        "name: demo\nlocation: fsn1\ntalos:\n  version: v1.11.3\ncontrol_plane:\n  count: 1\n"
        "workers:\n  - name: app\n    count: 1\n    labels: {tier: app}\n"
    )
    text = render_machine_config(
        cluster, load_secrets(BUNDLE), cluster.pool(pool), endpoint=endpoint, hostname=hostname
    )
    return text.encode()


async def eventually(
    world: World,
    check: Callable[[], Any],
    what: str,
    *,
    attempts: int = 150,
    retry: tuple[type[BaseException], ...] = (
        AssertionError,
        OSError,
        Hk8sError,
        ApiException,
        HTTPError,
    ),
) -> Any:
    """``check()`` (sync: in a thread; async: awaited) until it passes; polls on the world's
    clock, every 2 simulated seconds."""
    last: BaseException | None = None
    for _ in range(attempts):
        try:
            if inspect.iscoroutinefunction(check):
                return await check()
            return await asyncio.to_thread(check)
        except retry as exc:
            last = exc
        await world.clock.sleep(2.0)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")
