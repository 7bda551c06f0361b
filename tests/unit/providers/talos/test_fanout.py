"""``nodes``/``node`` targeting and per-node results, as apid aggregates them."""

from __future__ import annotations

from typing import Any

import pytest

from hk8s.errors import OperationsFailedError, UnavailableError, UsageError
from hk8s.model import ManualClock, Timing
from hk8s.providers.talos import (
    BootstrapOutcome,
    RebootMode,
    ResetWipeMode,
    TalosClient,
    TalosCredentials,
    raise_node_errors,
)

FAST = Timing(request_timeout=5.0, retry_initial=1.0, retry_max=4.0, retry_attempts=3)


@pytest.fixture
async def talos(talos_server: Any, pki: Any) -> Any:
    node = await talos_server(mtls=True)
    credentials = TalosCredentials(
        ca=pki.ca.crt_pem, crt=pki.client.crt_pem, key=pki.client.key_pem("ED25519 PRIVATE KEY")
    )
    client = TalosClient([node.ip], credentials=credentials, timing=FAST, clock=ManualClock())
    client.fake = node.fake  # type: ignore[attr-defined]  # the node behind it, for asserts
    yield client
    await client.aclose()


async def test_fan_out_keeps_every_nodes_answer_and_error(talos: Any) -> None:
    talos.fake.down = {"10.0.1.3"}
    results = await talos.with_nodes("10.0.1.2", "10.0.1.3", "10.0.1.4").version()

    assert [r.node for r in results] == ["10.0.1.2", "10.0.1.3", "10.0.1.4"]
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].unwrap().tag == "v1.11.5"
    failed = results[1].error
    assert isinstance(failed, UnavailableError)  # status code 14 from metadata.status
    assert "10.0.1.3" in str(failed) and "connection refused" in str(failed)
    with pytest.raises(UnavailableError):
        results[1].unwrap()
    # One header entry per node, as talosctl sends them (metadata.Set("nodes", nodes...)).
    assert talos.fake.calls[-1] == ("Version", ["10.0.1.2", "10.0.1.3", "10.0.1.4"], [])


async def test_all_node_errors_are_reported_together(talos: Any) -> None:
    talos.fake.down = {"a", "b"}
    results = await talos.with_nodes("a", "b", "c").reboot()
    with pytest.raises(OperationsFailedError) as err:
        raise_node_errors(results, "reboot")
    assert len(err.value.errors) == 2


async def test_a_node_missing_from_the_reply_is_an_error_not_silence(talos: Any) -> None:
    talos.fake.silent = {"b"}
    results = await talos.with_nodes("a", "b").version()
    assert [(r.node, r.ok) for r in results] == [("a", True), ("b", False)]
    assert "no reply from b" in str(results[1].error)


async def test_without_nodes_the_endpoint_answers_for_itself(talos: Any) -> None:
    (result,) = await talos.etcd_member_list()
    member = result.unwrap()[0]
    assert (member.id, member.hostname) == (0xABC, "demo-cp-1")
    assert talos.fake.calls[-1] == ("EtcdMemberList", [], [])


async def test_one_node_calls_use_node_metadata(talos: Any) -> None:
    assert await talos.with_nodes("10.0.1.2").bootstrap() is BootstrapOutcome.STARTED
    assert talos.fake.calls[-1] == ("Bootstrap", [], ["10.0.1.2"])
    with pytest.raises(UsageError, match="one node"):
        await talos.with_nodes("a", "b").bootstrap()


async def test_bootstrap_twice_is_already_bootstrapped(talos: Any) -> None:
    assert await talos.bootstrap() is BootstrapOutcome.STARTED
    assert await talos.bootstrap() is BootstrapOutcome.ALREADY_BOOTSTRAPPED


async def test_lifecycle_calls_send_what_talosctl_sends(talos: Any) -> None:
    (ack,) = await talos.upgrade("factory.talos.dev/hcloud-installer/abc:v1.12.0", preserve=True)
    assert ack.unwrap().startswith("Upgrade request received")
    upgrade = talos.fake.requests[-1]
    assert (upgrade.image, upgrade.preserve, upgrade.stage) == (
        "factory.talos.dev/hcloud-installer/abc:v1.12.0",
        True,
        False,
    )
    (reboot,) = await talos.reboot(RebootMode.POWERCYCLE)
    assert reboot.unwrap() == "reboot-1"
    await talos.reset(
        graceful=False,
        reboot=True,
        mode=ResetWipeMode.SYSTEM_DISK,
        system_partitions={"EPHEMERAL": True},
    )
    reset = talos.fake.requests[-1]
    assert (reset.graceful, reset.reboot, reset.mode) == (False, True, 1)
    assert [(p.label, p.wipe) for p in reset.system_partitions_to_wipe] == [("EPHEMERAL", True)]
    (shutdown,) = await talos.shutdown(force=True)
    assert shutdown.ok and talos.fake.requests[-1].force is True


async def test_services_etcd_and_disks(talos: Any) -> None:
    (services,) = await talos.service_list()
    etcd, kubelet = services.unwrap()
    assert (etcd.id, etcd.state, etcd.healthy) == ("etcd", "Running", True)
    assert (kubelet.healthy, kubelet.message) == (None, "waiting")
    (restart,) = await talos.service_restart("kubelet")
    assert "kubelet" in restart.unwrap()

    (status,) = await talos.etcd_status()
    assert status.unwrap().is_leader and status.unwrap().db_size == 4096
    (leader,) = await talos.etcd_forfeit_leadership()
    assert leader.unwrap() == "demo-cp-1"
    await talos.etcd_remove_member_by_id(0xABC)
    assert talos.fake.requests[-1].member_id == 0xABC
    (left,) = await talos.etcd_leave_cluster()
    assert left.ok

    (disks,) = await talos.disks()
    (disk,) = disks.unwrap()
    assert (disk.device_name, disk.type, disk.system_disk) == ("sda", "SSD", True)
