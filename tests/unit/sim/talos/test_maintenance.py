"""Maintenance mode as Talos serves it: the maintenance service up to 1.12
(internal/app/maintenance/server.go), apid with the Reader role for everyone from 1.13."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
import yaml

from hk8s.errors import AuthError, NotFoundError, PermanentError
from hk8s.providers.talos import ApplyMode, MaintenanceModeError

if TYPE_CHECKING:
    from .conftest import Env  # type: ignore[import-not-found]


async def test_serves_disks_and_refuses_the_rest(env: Env) -> None:
    _, ip = await env.server()
    async with env.maintenance(ip) as talos:
        [disks] = await talos.disks()
        assert [d.device_name for d in disks.unwrap()] == ["sda"]
        assert disks.unwrap()[0].system_disk is False
        # Version needs os:admin there, which a maintenance-mode caller never has.
        with pytest.raises(
            MaintenanceModeError, match="API is not implemented in maintenance mode"
        ):
            await talos.version()
        with pytest.raises(MaintenanceModeError, match="method Bootstrap not implemented"):
            await talos.bootstrap()
        with pytest.raises(MaintenanceModeError, match="--mode='no-reboot' is not supported"):
            await talos.apply_configuration(env.config("cp", "demo-cp-1"), ApplyMode.NO_REBOOT)


@pytest.mark.parametrize("release", ["v1.13.0", "v1.13.9"])
async def test_talos_113_answers_readers_without_a_certificate(env: Env, release: str) -> None:
    # 1.13 has no maintenance service: apid serves it, and every caller is a Reader.
    _, ip = await env.server(version=release)
    async with env.maintenance(ip) as talos:
        [version] = await talos.version()
        info = version.unwrap()
        assert (info.tag, info.platform) == (release, "hcloud")
        assert info.rbac is False  # no config yet: no features
        [services] = await talos.service_list()
        assert "apid" in {s.id for s in services.unwrap()}
        with pytest.raises(AuthError, match="not authorized"):
            await talos.bootstrap()
        with pytest.raises(AuthError, match="not authorized"):
            await talos.reboot()
        # ApplyConfiguration still works (and still refuses no-reboot there).
        with pytest.raises(MaintenanceModeError, match="--mode='no-reboot' is not supported"):
            await talos.apply_configuration(env.config("cp", "demo-cp-1"), ApplyMode.NO_REBOOT)


async def test_talos_112_maintenance_service_refuses_service_list(env: Env) -> None:
    _, ip = await env.server(version="v1.12.11")
    async with env.maintenance(ip) as talos:
        with pytest.raises(MaintenanceModeError):
            await talos.service_list()


def _edit(data: bytes, change: str) -> bytes:
    doc = yaml.safe_load(data.decode().split("\n---\n")[0])
    if change == "type":
        doc["machine"]["type"] = "router"
    elif change == "ca":
        del doc["machine"]["ca"]
    elif change == "endpoint":
        doc["cluster"]["controlPlane"]["endpoint"] = "not a url"
    elif change == "token":
        doc["machine"]["token"] = "short"
    return yaml.safe_dump(doc).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("type", 'unknown machine type "router"'),
        ("ca", "issuing CA or some accepted CAs are required"),
        ("endpoint", "invalid controlplane endpoint"),
        ("token", "trustd token is invalid"),
    ],
)
async def test_invalid_configs_are_refused_with_talos_messages(
    env: Env, change: str, message: str
) -> None:
    _, ip = await env.server()
    bad = _edit(env.config("cp", "demo-cp-1"), change)
    async with env.maintenance(ip) as talos:
        with pytest.raises(PermanentError, match=message) as info:
            await talos.apply_configuration(bad, ApplyMode.AUTO)
        assert info.value.context["grpc_status"] == "INVALID_ARGUMENT"
        with pytest.raises(PermanentError, match="failed to parse config"):
            await talos.apply_configuration(b"machine: [unclosed", ApplyMode.AUTO)
        # Nothing was applied: the node still answers in maintenance mode.
        assert (await talos.disks())[0].ok


async def test_worker_config_with_ca_key_is_refused(env: Env) -> None:
    _, ip = await env.server("app")
    doc = yaml.safe_load(env.config("app", "demo-app-1").decode().split("\n---\n")[0])
    doc["machine"]["ca"]["key"] = doc["machine"]["ca"]["crt"]
    async with env.maintenance(ip) as talos:
        with pytest.raises(PermanentError, match="not allowed on non-controlplane nodes"):
            await talos.apply_configuration(yaml.safe_dump(doc).encode(), ApplyMode.AUTO)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")
async def test_maintenance_certificate_is_self_signed_ed25519(env: Env) -> None:
    _, ip = await env.server()
    async with env.maintenance(ip) as talos:
        await talos.disks()  # the node is up

    def inspect() -> str:
        served = subprocess.run(
            ["openssl", "s_client", "-connect", f"{ip}:50000", "-alpn", "h2"],
            input=b"",
            capture_output=True,
            timeout=20,
            check=False,
        ).stdout
        return subprocess.run(
            ["openssl", "x509", "-noout", "-text"],
            input=served,
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout.decode()

    text = await asyncio.to_thread(inspect)
    assert "Public Key Algorithm: ED25519" in text
    assert f"IP Address:{ip}" in text


async def test_stuck_node_accepts_config_but_stays_in_maintenance(env: Env) -> None:
    server_id, ip = await env.server("cp")
    node = env.fleet.nodes[server_id]
    node.server_name = "demo-cp-stuck"
    async with env.maintenance(ip) as talos:
        await talos.apply_configuration(env.config("cp", "demo-cp-stuck"), ApplyMode.AUTO)
        await env.fleet.clock.sleep(120)
        assert (await talos.disks())[0].ok
        with pytest.raises(MaintenanceModeError):
            await talos.version()


async def test_slow_boot_fault_delays_the_api(env: Env) -> None:
    _, fast = await env.server("cp")
    _, slow = await env.server("slow")  # named demo-slow-<n>: matches "*-slow-*"
    await env.fleet.clock.sleep(60)  # a normal boot takes 30 s, a slow one 5 times that
    phases = {ip: env.fleet.node_by_address(ip).phase for ip in (fast, slow)}
    assert phases == {fast: "maintenance", slow: "booting"}
    await env.fleet.clock.sleep(120)
    assert env.fleet.node_by_address(slow).phase == "maintenance"


async def test_cosi_is_read_only_and_filtered(env: Env) -> None:
    _, ip = await env.server()
    async with env.maintenance(ip) as talos:
        [status] = await talos.list_resources("runtime", "MachineStatuses.runtime.talos.dev")
        assert status.spec["stage"] == "maintenance"
        disk = await talos.get_resource("block", "Disks.block.talos.dev", "sda")
        assert disk.spec["dev_path"] == "/dev/sda"
        with pytest.raises(NotFoundError):
            await talos.get_resource("block", "Disks.block.talos.dev", "sdz")
        # The machine config is sensitive: not for a caller without os:admin.
        with pytest.raises(AuthError):
            await talos.list_resources("config", "MachineConfigs.config.talos.dev")
