"""``TalosNodes``: the controller's port, over real connections; talosconfig interop."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.errors import UsageError
from hk8s.model import ManualClock, Timing
from hk8s.pki import (
    KeyAlgorithm,
    create_ca,
    generate_talosconfig,
    issue_talos_server_cert,
    write_talosconfig,
)
from hk8s.providers.talos import (
    ApplyMode,
    BootstrapOutcome,
    MaintenanceModeError,
    TalosClient,
    TalosCredentials,
    TalosNodeAPI,
    TalosNodes,
)

if TYPE_CHECKING:
    from pathlib import Path

FAST = Timing(request_timeout=5.0, retry_initial=1.0, retry_max=4.0, retry_attempts=3)


def creds(pki: Any) -> TalosCredentials:
    key = pki.client.key_pem("ED25519 PRIVATE KEY")
    return TalosCredentials(ca=pki.ca.crt_pem, crt=pki.client.crt_pem, key=key)


async def test_a_node_from_maintenance_to_configured(talos_server: Any, pki: Any) -> None:
    maintenance = await talos_server(mtls=False)
    configured = await talos_server(mtls=True)
    nodes: TalosNodeAPI = TalosNodes(creds(pki), timing=FAST, clock=ManualClock())
    try:
        applied = await nodes.apply_config(
            maintenance.ip, b"machine: {}", ApplyMode.AUTO, maintenance=True
        )
        assert applied.mode is ApplyMode.REBOOT
        assert (await nodes.version(maintenance.ip, maintenance=True)).tag == "v1.11.5"

        ip = configured.ip
        assert await nodes.bootstrap(ip) is BootstrapOutcome.STARTED
        assert await nodes.bootstrap(ip) is BootstrapOutcome.ALREADY_BOOTSTRAPPED
        assert "kind: Config" in await nodes.kubeconfig(ip)
        assert [m.hostname for m in await nodes.etcd_members(ip)] == ["demo-cp-1"]
        assert [s.id for s in await nodes.services(ip)] == ["etcd", "kubelet"]
        await nodes.upgrade(ip, "factory.talos.dev/hcloud-installer/x:v1.12.1", preserve=True)
        await nodes.reboot(ip)
        await nodes.leave_etcd(ip)
        await nodes.remove_etcd_member(ip, 0xABC)
        await nodes.reset(ip, graceful=True, reboot=False)
        called = [c[0] for c in configured.fake.calls]
        assert called[-5:] == [
            "Upgrade",
            "Reboot",
            "EtcdLeaveCluster",
            "EtcdRemoveMemberByID",
            "Reset",
        ]
    finally:
        await nodes.aclose()


async def test_port_raises_the_nodes_error(talos_server: Any, pki: Any) -> None:
    maintenance = await talos_server(mtls=False)
    nodes = TalosNodes(creds(pki), timing=FAST, clock=ManualClock())
    try:
        with pytest.raises(MaintenanceModeError):
            await nodes.client(maintenance.ip, maintenance=True).etcd_leave_cluster()
    finally:
        await nodes.aclose()


async def test_secure_calls_need_credentials() -> None:
    nodes = TalosNodes(None, timing=FAST, clock=ManualClock())
    with pytest.raises(UsageError, match="credentials"):
        await nodes.version("127.0.0.1")


async def test_client_from_a_talosconfig_written_by_hk8s_pki(
    talos_server: Any, free_ip: str, tmp_path: Path
) -> None:
    """hk8s.pki's identity (Ed25519 OS CA, O=os:admin, ED25519 PRIVATE KEY) does mTLS with
    a node cert from the same CA; endpoints and nodes come from the file."""
    now = dt.datetime.now(dt.UTC)
    os_ca = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=now)
    server_cert = issue_talos_server_cert(os_ca, now=now, ip_addresses=[free_ip])
    node = await talos_server(mtls=True, ip=free_ip, cert=server_cert, client_ca=os_ca)
    config = generate_talosconfig("demo", os_ca, endpoints=[free_ip], nodes=["10.0.1.2"])
    assert b"ED25519 PRIVATE KEY" in config.key_pem
    path = write_talosconfig(tmp_path / "talosconfig", config)

    talos = TalosClient.from_talosconfig(path, timing=FAST, clock=ManualClock())
    async with talos:
        (version,) = await talos.version()
    assert version.node == "10.0.1.2"
    assert node.fake.calls[-1] == ("Version", ["10.0.1.2"], [])


def test_a_talosconfig_without_endpoints_is_refused(pki: Any) -> None:
    from hk8s.pki import Talosconfig

    config = Talosconfig("demo", (), (), pki.ca.crt_pem, pki.client.crt_pem, pki.client.key_pem())
    with pytest.raises(UsageError, match="no endpoints"):
        TalosClient.from_talosconfig(config)
