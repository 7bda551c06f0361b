"""A configured node: mTLS apid, roles, bootstrap, etcd across nodes, kubeconfig, lifecycle."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
import yaml
from cryptography import x509

from hk8s.config import parse_config
from hk8s.errors import AuthError, PermanentError, TransientAPIError, UnavailableError
from hk8s.pki import KeyAlgorithm, create_ca, generate_talosconfig
from hk8s.providers.talos import (
    ApplyMode,
    BootstrapOutcome,
    MaintenanceModeError,
    TalosClient,
    TalosCredentials,
)

if TYPE_CHECKING:
    from .conftest import Env  # type: ignore[import-not-found]


async def configure(env: Env, pool: str = "cp", name: str | None = None) -> tuple[int, str]:
    server_id, ip = await env.server(pool)
    hostname = name or f"demo-{pool}-{server_id}"
    async with env.maintenance(ip) as talos:
        [result] = await talos.apply_configuration(env.config(pool, hostname), ApplyMode.AUTO)
        assert result.unwrap().mode is ApplyMode.REBOOT
    if pool == "cp":
        await env.wait_configured(ip)
    return server_id, ip


async def test_bootstrap_kubeconfig_and_roles(env: Env) -> None:
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        [version] = await talos.version()  # retried until the node is back with mTLS
        assert version.unwrap().tag == "v1.11.3"
        assert await talos.bootstrap() is BootstrapOutcome.STARTED
        assert await talos.bootstrap() is BootstrapOutcome.ALREADY_BOOTSTRAPPED
        [members] = await talos.etcd_member_list()
        assert [m.hostname for m in members.unwrap()] == ["demo-cp-1"]
        kubeconfig = yaml.safe_load(await talos.kubeconfig())
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://{ip}:6443"
    ca = x509.load_pem_x509_certificate(base64.b64decode(cluster["certificate-authority-data"]))
    assert ca.subject == env.bundle.k8s_ca.cert.subject
    user = kubeconfig["users"][0]["user"]
    client = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    assert client.issuer == env.bundle.k8s_ca.cert.subject

    # A reader may look but not act; a cert from another CA does not get through TLS.
    reader = generate_talosconfig("demo", env.bundle.os_ca, endpoints=[ip], roles=["os:reader"])
    creds = TalosCredentials(reader.ca_pem, reader.crt_pem, reader.key_pem)
    async with env.client(ip, creds) as talos:
        assert (await talos.version())[0].ok
        with pytest.raises(AuthError, match="not authorized"):
            await talos.reboot()
        with pytest.raises(AuthError):  # the machine config holds secrets: admins only
            await talos.get_resource("config", "MachineConfigs.config.talos.dev", "v1alpha1")
    async with env.client(ip) as talos:
        config = await talos.get_resource("config", "machineconfigs", "v1alpha1")
        assert config.spec["machine"]["type"] == "controlplane"
    other_ca = create_ca(
        algorithm=KeyAlgorithm.ED25519, organization="talos", now=dt.datetime.now(dt.UTC)
    )
    stranger = generate_talosconfig("demo", other_ca, endpoints=[ip])
    creds = TalosCredentials(reader.ca_pem, stranger.crt_pem, stranger.key_pem)
    async with env.client(ip, creds) as talos:
        with pytest.raises(AuthError):
            await talos.version()


async def test_read_and_events_streams(env: Env) -> None:
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        assert b"type: controlplane" in await talos.read("/system/state/config.yaml")
        events = talos.events(tail_events=-1)
        stages = []
        async for event in events:
            stages.append(event.data.get("stage"))
            if event.data.get("stage") == "RUNNING":
                break
        await events.aclose()
    # The node's own history: booted into maintenance, rebooted, came back running.
    assert stages[:1] == ["BOOTING"]
    assert "MAINTENANCE" in stages
    assert "REBOOTING" in stages


async def test_etcd_is_consistent_across_control_planes(env: Env) -> None:
    _, first = await configure(env)
    async with env.client(first) as talos:
        await talos.version()
        await talos.bootstrap()
    _, second = await configure(env)
    _, worker = await configure(env, "app")
    async with env.client(second) as talos:
        await talos.version()
        # A second bootstrap of the cluster: AlreadyExists.
        assert await talos.bootstrap() is BootstrapOutcome.ALREADY_BOOTSTRAPPED
    both = TalosClient([first], credentials=env.creds, timing=env.timing, nodes=[first, second])
    async with both:
        for _ in range(100):  # the second member joins etcd after a few simulated seconds
            lists = await both.etcd_member_list()
            if all(r.ok and len(r.unwrap()) == 2 for r in lists):
                break
            await env.fleet.clock.sleep(2)
        assert [r.node for r in lists] == [first, second]
        ids = [sorted(m.id for m in r.unwrap()) for r in lists]
        assert ids[0] == ids[1]
        statuses = [r.unwrap() for r in await both.etcd_status()]
        assert statuses[0].leader == statuses[1].leader != 0
        # apid proxies to the worker too (by its private IP) and reports per-node errors.
        await env.wait_configured(worker)  # it got its certificate from trustd
        private = env.fleet.node_by_address(worker).private_ips[0]
        results = await both.with_nodes(worker, private, "127.61.99.99").version()
        assert [r.ok for r in results] == [True, True, False]
        assert isinstance(results[2].error, UnavailableError)
        with pytest.raises(MaintenanceModeError, match="only available on control plane"):
            (await both.with_nodes(worker).bootstrap())
        # The second control plane leaves; both views agree on one member.
        await both.with_nodes(second).etcd_leave_cluster()
        lists = await both.etcd_member_list()
        assert [len(r.unwrap()) for r in lists] == [1, 1]
        with pytest.raises(Exception, match="member not found"):
            for r in await both.with_nodes(first).etcd_remove_member_by_id(12345):
                r.unwrap()


async def test_an_early_bootstrap_is_refused_until_cri_and_time_sync_then_works(
    env: Env,
) -> None:
    # v1alpha1_server.go Bootstrap answers FailedPrecondition on a node that just booted;
    # the client reports it as retryable (upstream's pkg/cluster/bootstrap.go retries it).
    env.fleet.timings = replace(env.fleet.timings, cri=1e9, time_sync=1e9)
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        await talos.version()
        with pytest.raises(TransientAPIError, match="bootstrap is not available yet") as caught:
            await talos.bootstrap()
        assert caught.value.retryable
        assert caught.value.context["grpc_status"] == "FAILED_PRECONDITION"
        env.fleet.timings = replace(env.fleet.timings, cri=0.0)
        with pytest.raises(TransientAPIError, match="time is not in sync yet"):
            await talos.bootstrap()
        env.fleet.timings = replace(env.fleet.timings, time_sync=0.0)
        assert await talos.bootstrap() is BootstrapOutcome.STARTED


async def test_upgrade_reboots_into_the_new_release(env: Env) -> None:
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        await talos.version()
        await talos.bootstrap()
        await talos.upgrade(f"factory.talos.dev/hcloud-installer/{'a' * 64}:v1.12.1")
        await env.wait_configured(ip, "v1.12.1")
        # Talos keeps its etcd data across the upgrade.
        assert len((await talos.etcd_member_list())[0].unwrap()) == 1
        assert (await talos.version())[0].unwrap().platform == "hcloud"


async def test_the_bare_factory_installer_turns_the_node_into_metal(env: Env) -> None:
    # The factory's `installer/` path is the metal profile: its UKI says talos.platform=metal.
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        assert (await talos.version())[0].unwrap().platform == "hcloud"
        await talos.upgrade(f"factory.talos.dev/installer/{'a' * 64}:v1.12.1", force=True)
        await env.wait_configured(ip, "v1.12.1")
        info = (await talos.version())[0].unwrap()
        assert (info.platform, info.platform_mode) == ("metal", "metal")


async def test_failed_upgrade_boots_the_old_release(env: Env) -> None:
    _, ip = await configure(env, name="demo-cp-bad")
    env.fleet.nodes[1].server_name = "demo-cp-bad"
    async with env.client(ip) as talos:
        await talos.version()
        await talos.upgrade("ghcr.io/siderolabs/installer:v1.12.1")
        await env.fleet.clock.sleep(120)
        assert (await talos.version())[0].unwrap().tag == "v1.11.3"


async def test_reset_returns_to_maintenance_mode(env: Env) -> None:
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        await talos.version()
        await talos.bootstrap()
        await talos.reset(graceful=False, reboot=True)
    await env.fleet.clock.sleep(60)
    async with env.maintenance(ip) as talos:
        [disks] = await talos.disks()
        assert disks.unwrap()[0].system_disk is False
        with pytest.raises(MaintenanceModeError):
            await talos.version()


async def test_health_check_streams_talosctl_progress(env: Env) -> None:
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        await talos.bootstrap()
        lines = [line async for line in talos.health_check([ip], [], wait_timeout=600)]
    assert lines[0] == f"discovered nodes: ['{ip}']"
    assert "waiting for etcd to be healthy: OK" in lines
    assert lines[-1] == "waiting for all k8s nodes to report: OK"


async def test_running_node_applies_label_changes_without_reboot(env: Env) -> None:
    _, ip = await configure(env, name="demo-cp-1")
    changed = env.config("cp", "demo-cp-1").replace(
        b"machine:\n", b"machine:\n    nodeLabels:\n        team: blue\n", 1
    )
    async with env.client(ip) as talos:
        [result] = await talos.apply_configuration(changed, ApplyMode.AUTO)
        assert result.unwrap().mode is ApplyMode.NO_REBOOT
        assert b"team: blue" in await talos.read("/system/state/config.yaml")
        # A new trustd token is part of the node's identity: that needs a reboot.
        with pytest.raises(Exception, match="can't be applied in immediate mode"):
            token = env.bundle.trustd_token.encode()
            other = env.config("cp", "demo-cp-1").replace(token, b"abcdef.0123456789abcdef")
            await talos.apply_configuration(other, ApplyMode.NO_REBOOT)


async def test_reboot_events_carry_its_actor_id(env: Env) -> None:
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        [reboot] = await talos.reboot()
        actor = reboot.unwrap()
    await env.fleet.clock.sleep(60)  # down, then booting (~40 s)
    await env.wait_configured(ip)
    async with env.client(ip) as talos:  # the old connection died with the reboot
        seen = []
        events = talos.events(tail_events=-1, with_actor_id=actor)
        async for event in events:
            seen.append((event.type, event.data.get("sequence") or event.data.get("stage")))
            if event.data.get("action") == "STOP":
                break
        await events.aclose()
    assert seen[0] == ("machine.SequenceEvent", "reboot")
    assert ("machine.MachineStatusEvent", "REBOOTING") in seen
    assert seen[-1] == ("machine.SequenceEvent", "reboot")


INSTALLER = f"factory.talos.dev/hcloud-installer/{'a' * 64}"


async def test_upgrade_pulls_the_installer_inside_the_call(env: Env) -> None:
    # Talos answers Upgrade only after pulling and test-running the installer; the factory
    # builds an installer on its first request.
    timings = env.fleet.timings
    _, ip = await configure(env)
    async with env.client(ip) as talos:
        await talos.version()
        started = env.fleet.clock.now()
        await talos.upgrade(f"{INSTALLER}:v1.12.1", force=True)
        took = env.fleet.clock.now() - started
        assert took >= timings.installer_pull + timings.installer_build
        with pytest.raises(PermanentError, match="not found") as caught:
            await talos.upgrade(f"{INSTALLER}:v1.99.0", force=True)
        assert "check that" in (caught.value.hint or "")


async def test_the_upgrade_call_gets_more_than_a_request_timeout(env: Env) -> None:
    # A factory build of 2.5 wall seconds outlasts any request deadline (2 s at this speed);
    # the Upgrade call has its own, and succeeds.
    speed = 1.0 / env.fleet.clock.wall(1.0)  # type: ignore[attr-defined]
    env.fleet.timings = replace(env.fleet.timings, installer_build=2.5 * speed)
    _, ip = await configure(env)
    timing = replace(env.timing, upgrade_call_timeout=10.0 * speed)
    async with TalosClient([ip], credentials=env.creds, timing=timing) as talos:
        await talos.version()
        [ack] = await talos.upgrade(f"{INSTALLER}:v1.12.2", force=True)
        assert ack.unwrap() == "Upgrade request received"


@pytest.mark.parametrize(
    ("release", "preserve", "refused"),
    [
        ("v1.11.6", True, True),  # preserve changes nothing before 1.12.9 / 1.13.4
        ("v1.12.8", True, True),
        ("v1.12.9", True, False),  # ... and skips the etcd check from then on
        ("v1.13.4", True, False),
        ("v1.13.9", False, True),
    ],
)
async def test_upgrade_checks_etcd_unless_preserve_switches_it_off(
    env: Env, release: str, preserve: bool, refused: bool
) -> None:
    server_id, ip = await env.server("cp", version=release)
    async with env.maintenance(ip) as maint:
        await maint.apply_configuration(env.config("cp", f"demo-cp-{server_id}"), ApplyMode.AUTO)
    await env.wait_configured(ip)
    env.fleet.timings = replace(env.fleet.timings, time_sync=0.0, cri=0.0)
    async with env.client(ip) as talos:
        await talos.bootstrap()
        cluster = env.fleet.nodes[server_id].cluster
        assert cluster is not None
        cluster.join("demo-cp-8", "127.99.0.8")
        cluster.join("demo-cp-9", "127.99.0.9")
        cluster.set_started("127.99.0.9", False)  # a member that is down
        if refused:
            with pytest.raises(TransientAPIError, match="all members must be healthy"):
                await talos.upgrade(f"{INSTALLER}:v1.13.9", preserve=preserve)
        else:
            [ack] = await talos.upgrade(f"{INSTALLER}:v1.13.9", preserve=preserve)
            assert ack.ok


@pytest.mark.parametrize("advertised_subnets", [True, False])
async def test_etcd_peers_meet_on_the_private_network_only_with_advertised_subnets(
    env: Env, advertised_subnets: bool
) -> None:
    # A 192.168/16 network: the (loopback) public address sorts first, and Talos' etcd
    # advertises the lowest routed address unless cluster.etcd.advertisedSubnets says
    # otherwise; peer traffic on public addresses is firewalled.
    env.cluster = parse_config(
        "name: demo\nlocation: fsn1\ntalos:\n  version: v1.11.3\ncontrol_plane:\n  count: 3\n"
        "network:\n  cidr: 192.168.0.0/16\n  node_subnet: 192.168.1.0/24\n"
    )
    ips = []
    for _ in range(2):
        server_id, ip = await env.server("cp", private="192.168.1")
        document = yaml.safe_load(env.config("cp", f"demo-cp-{server_id}"))
        assert document["cluster"]["etcd"]["advertisedSubnets"] == ["192.168.1.0/24"]
        if not advertised_subnets:
            del document["cluster"]["etcd"]["advertisedSubnets"]
        async with env.maintenance(ip) as maint:
            await maint.apply_configuration(yaml.safe_dump(document).encode(), ApplyMode.AUTO)
        await env.wait_configured(ip)
        ips.append(ip)
    env.fleet.timings = replace(env.fleet.timings, time_sync=0.0, cri=0.0)
    async with env.client(ips[0]) as talos:
        await talos.bootstrap()
        await env.fleet.clock.sleep(60)  # ample time for the second member to join
        [members] = await talos.etcd_member_list()
    peers = {m.hostname: m.peer_urls[0] for m in members.unwrap()}
    if advertised_subnets:
        assert len(peers) == 2
        assert all("//192.168.1." in url for url in peers.values())
    else:
        assert list(peers.values()) == [f"https://{ips[0]}:2380"]  # the public address
        etcd = env.fleet.node_by_address(ips[1]).services["etcd"]  # type: ignore[union-attr]
        assert etcd[0] == "Preparing" and "2380 is firewalled" in etcd[2]


async def test_a_worker_forwards_no_requests(env: Env) -> None:
    # apid on a worker has no client certificate, hence no remote backends (director.go:
    # PermissionDenied "no request forwarding"); a single target that is itself is served.
    _, cp = await configure(env)
    _, worker = await configure(env, "app")
    await env.wait_configured(worker)
    via_worker = TalosClient([worker], credentials=env.creds, timing=env.timing, nodes=[cp])
    async with via_worker:
        with pytest.raises(AuthError, match="no request forwarding"):
            await via_worker.version()
        with pytest.raises(AuthError, match="no request forwarding"):
            await via_worker.with_nodes(cp, worker).version()
        [itself] = await via_worker.with_nodes(worker).version()
        assert itself.ok
    via_cp = TalosClient([cp], credentials=env.creds, timing=env.timing, nodes=[worker])
    async with via_cp:  # a control plane forwards
        assert [r.ok for r in await via_cp.version()] == [True]
