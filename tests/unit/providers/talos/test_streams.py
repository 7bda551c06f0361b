"""Streaming calls: kubeconfig, etcd snapshot/recover, logs, dmesg, read, events, health, COSI."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.errors import NotFoundError, TransientAPIError
from hk8s.model import ManualClock, Timing
from hk8s.providers.talos import TalosClient, TalosCredentials

if TYPE_CHECKING:
    from pathlib import Path

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


async def test_kubeconfig_is_unpacked_from_the_tar_gz_stream(talos: Any) -> None:
    text = await talos.kubeconfig()
    assert text.startswith("apiVersion: v1\nkind: Config\n")
    assert talos.fake.calls[-1] == ("Kubeconfig", [], [])


async def test_kubeconfig_goes_to_one_node(talos: Any) -> None:
    await talos.with_nodes("10.0.1.2").kubeconfig()
    assert talos.fake.calls[-1] == ("Kubeconfig", [], ["10.0.1.2"])


async def test_etcd_snapshot_is_written_to_a_private_file(talos: Any, tmp_path: Path) -> None:
    target = tmp_path / "etcd.snapshot"
    size = await talos.etcd_snapshot(target)
    assert target.read_bytes() == talos.fake.snapshot
    assert size == len(talos.fake.snapshot)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_a_broken_etcd_snapshot_leaves_no_file(talos: Any, tmp_path: Path) -> None:
    talos.fake.snapshot_fail_after = 3
    backups = tmp_path / "backups"
    backups.mkdir()
    with pytest.raises(TransientAPIError, match="etcd snapshot failed"):
        await talos.etcd_snapshot(backups / "etcd.snapshot")
    assert list(backups.iterdir()) == []


async def test_etcd_recover_uploads_the_snapshot(talos: Any, tmp_path: Path) -> None:
    source = tmp_path / "db"
    source.write_bytes(b"x" * (3 << 20) + b"end")  # several 1 MiB chunks
    await talos.etcd_recover(source)
    assert bytes(talos.fake.recovered) == source.read_bytes()


async def test_logs_dmesg_and_read(talos: Any) -> None:
    chunks = [c async for c in talos.logs("kubelet", tail_lines=10)]
    assert b"".join(chunks) == b"line 1\nline 2\n"
    request = talos.fake.requests[-1]
    assert (request.namespace, request.id, request.tail_lines) == ("system", "kubelet", 10)
    assert b"".join([c async for c in talos.dmesg()]) == b"[0.0] booting\n"
    assert await talos.read("/proc/cpuinfo") == b"contents of /proc/cpuinfo"


async def test_events_are_decoded_and_the_stream_can_be_left(talos: Any) -> None:
    events = []
    async for event in talos.events(tail_events=5):
        events.append(event)
        if len(events) == 2:
            break  # the server's stream stays open: leaving must not hang
    assert [e.type for e in events] == ["machine.PhaseEvent", "machine.MachineStatusEvent"]
    assert events[0].data == {"phase": "install", "action": "STOP"}
    assert events[1].data == {"stage": "RUNNING"}
    assert events[0].actor_id == "actor-1"


async def test_health_check_streams_progress(talos: Any) -> None:
    lines = [line async for line in talos.health_check(["10.0.1.2"], ["10.0.2.2"], wait_timeout=60)]
    assert lines[-1] == "all checks passed"
    request = talos.fake.requests[-1]
    assert list(request.cluster_info.worker_nodes) == ["10.0.2.2"]
    assert request.wait_timeout.seconds == 60


async def test_resources_get_list_and_watch(talos: Any) -> None:
    machine = await talos.get_resource("runtime", "MachineStatuses.runtime.talos.dev", "machine")
    assert machine.spec == {"stage": "running", "status": {"ready": True}}
    assert machine.labels == {"talos.dev/stage": "running"}
    with pytest.raises(NotFoundError):
        await talos.get_resource("runtime", "MachineStatuses.runtime.talos.dev", "other")

    listed = await talos.list_resources("runtime", "MachineStatuses.runtime.talos.dev")
    assert [r.id for r in listed] == ["a", "b"]

    seen = []
    async for event in talos.watch("runtime", "MachineStatuses.runtime.talos.dev", "machine"):
        seen.append(event)
        if event.type == "UPDATED":
            break
    assert [e.type for e in seen] == ["CREATED", "BOOTSTRAPPED", "UPDATED"]
    assert seen[2].resource.spec["stage"] == "running"
    assert seen[2].old.spec["stage"] == "booting"
    watch = talos.fake.requests[-1]
    assert (watch.id, watch.api_version, watch.options.bootstrap_contents) == ("machine", 1, True)
