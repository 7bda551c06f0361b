"""A simulated Talos fleet on loopback addresses, and real hk8s Talos clients for it."""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

import pytest

import _reference  # type: ignore[import-not-found]
from hk8s.config import parse_config
from hk8s.errors import UnavailableError
from hk8s.machineconfig import render_machine_config
from hk8s.model import ScaledClock, Timing
from hk8s.pki import generate_talosconfig, load_secrets
from hk8s.providers.talos import TalosClient, TalosCredentials
from hk8s.sim.factory import TalosImage
from hk8s.sim.talos import TalosFaults, TalosFleet, TalosTimings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SPEED = 200.0
_ips = itertools.count(2)
# Nodes listen on <ip>:50000; a /16 of loopback per test process keeps test runs of other
# work trees on this machine off our addresses (they would answer with their own certs).
_NET = 64 + os.getpid() % 128


class Env:
    """One fleet plus what a test needs to drive it: configs, credentials, clients."""

    def __init__(self, fleet: TalosFleet) -> None:
        self.fleet = fleet
        self.bundle = load_secrets(_reference.REFERENCE / "talos/secrets.example.yaml")
        self.cluster = parse_config(
            "name: demo\nlocation: fsn1\ntalos:\n  version: v1.11.3\n"
            "control_plane:\n  count: 3\nworkers:\n  - name: app\n    count: 1\n"
            "    labels: {tier: app}\n"
        )
        self.timing = Timing().scaled(SPEED)
        self.endpoint = ""
        talosconfig = generate_talosconfig("demo", self.bundle.os_ca, endpoints=["x"])
        self.creds = TalosCredentials(talosconfig.ca_pem, talosconfig.crt_pem, talosconfig.key_pem)
        self._server_ids = itertools.count(1)

    async def server(
        self, pool: str = "cp", version: str = "v1.11.3", private: str = "10.0.1"
    ) -> tuple[int, str]:
        """A powered-on server booting a Talos snapshot; returns (server id, IP)."""
        n = next(_ips)
        server_id, ip = next(self._server_ids), f"127.{_NET}.{n // 250}.{n % 250 + 2}"
        self.fleet.install(server_id, TalosImage(version, "amd64"))
        await self.fleet.power_on(
            server_id, f"demo-{pool}-{server_id}", ip, [f"{private}.{n % 250 + 2}"]
        )
        self.endpoint = self.endpoint or ip
        return server_id, ip

    def config(self, pool: str, hostname: str) -> bytes:
        text = render_machine_config(
            self.cluster,
            self.bundle,
            self.cluster.pool(pool),
            endpoint=self.endpoint,
            hostname=hostname,
        )
        return text.encode()

    async def wait_configured(self, ip: str, tag: str | None = None) -> None:
        """Until the node answers over mTLS (optionally: with release ``tag``), or fail."""
        last: Exception | None = None
        async with self.client(ip) as talos:
            for _ in range(150):
                try:
                    [version] = await talos.version()
                    if tag is None or version.unwrap().tag == tag:
                        return
                except UnavailableError as exc:
                    last = exc
                await self.fleet.clock.sleep(2)
        raise AssertionError(f"{ip} did not come up configured: {last}")

    def maintenance(self, ip: str) -> TalosClient:
        return TalosClient([ip], insecure=True, timing=self.timing)

    def client(self, ip: str, creds: TalosCredentials | None = None) -> TalosClient:
        return TalosClient([ip], credentials=creds or self.creds, timing=self.timing)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    faults = TalosFaults(
        stuck_in_maintenance=["*-stuck"], failed_upgrades=["*-bad"], slow_boots=["*-slow-*"]
    )
    # Bootstrap is refused until CRI is up and the clock in sync (a few simulated seconds);
    # tests of that set these timings themselves, the others need not retry it.
    timings = TalosTimings(cri=0.0, time_sync=0.0)
    fleet = TalosFleet(ScaledClock(SPEED), faults=faults, timings=timings)
    yield Env(fleet)
    await fleet.close()
