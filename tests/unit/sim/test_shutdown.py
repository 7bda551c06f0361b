"""Stopping the simulated world is quiet: no task left pending, nothing logged by asyncio.

Before, ``make demo``, ``hk8s sim up`` + Ctrl-C and ``pytest tests/e2e/live`` ended with
"Task was destroyed but it is pending!" for the Kubernetes control loop's ``Event.wait()``
and Talos' quorum watch: tasks started without being cancelled and awaited on close, which
look like a crash to a user. A cluster is built through the public protocols (hcloud, Talos
API, kubernetes client); only its Talos snapshot is seeded instead of built in a rescue
system, which ``tests/e2e/sim_world`` covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hcloud
import pytest
import yaml
from hcloud.images import Image
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerHealthCheck,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.server_types import ServerType
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from urllib3.exceptions import HTTPError

import _reference  # type: ignore[import-not-found]
from hk8s.config import parse_config
from hk8s.errors import Hk8sError
from hk8s.machineconfig import render_machine_config
from hk8s.model import Timing
from hk8s.pki import generate_talosconfig, load_secrets
from hk8s.providers.talos import ApplyMode, BootstrapOutcome, TalosClient, TalosCredentials
from hk8s.sim._loadbalancer import KubeFrontends
from hk8s.sim.factory import DEFAULT_SCHEMATIC_ID
from hk8s.sim.hcloud import Image as SimImage
from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.sim.world import ThreadedWorld

SPEED = 100.0
VERSION = "v1.11.3"
HK8S = Path(sys.executable).with_name("hk8s")
QUIET = ("Task was destroyed", "Traceback", "never retrieved", "Exception in callback")


def _seed_talos_snapshot(world: World) -> int:
    """A snapshot whose disk holds Talos, as ``hk8s image build`` leaves one."""
    state = world.hcloud.state
    image_id = state.next_id()
    talos = {"version": VERSION, "arch": "amd64", "schematic": DEFAULT_SCHEMATIC_ID}
    state.images[image_id] = SimImage(
        image_id, "snapshot", None, f"talos {VERSION}", "x86", state.now(), disk_size=1,
        metadata={"talos": talos},
    )  # fmt: skip
    return image_id


async def _until(threaded: ThreadedWorld, check: Callable[[], Any], what: str) -> Any:
    last: BaseException | None = None
    for _ in range(150):
        try:
            if asyncio.iscoroutinefunction(check):
                return await check()
            return await asyncio.to_thread(check)
        except (AssertionError, OSError, Hk8sError, k8s.ApiException, HTTPError) as exc:
            last = exc
        await threaded.world.clock.sleep(2.0)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


async def _build_cluster(threaded: ThreadedWorld) -> tuple[hcloud.Client, k8s.CoreV1Api]:
    """A load balancer, one control plane and one worker, bootstrapped, nodes registered."""
    client = hcloud.Client(
        token=threaded.env["HCLOUD_TOKEN"],
        api_endpoint=threaded.env["HCLOUD_ENDPOINT"],
        poll_interval=0.05,
    )
    snapshot = threaded.call(lambda: _seed_talos_snapshot(threaded.world))
    check = LoadBalancerHealthCheck(protocol="tcp", port=6443, interval=5, timeout=3, retries=3)
    selector = LoadBalancerTargetLabelSelector(selector="role=control-plane")
    lb = await asyncio.to_thread(
        client.load_balancers.create,
        name="demo-api",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        services=[LoadBalancerService(protocol="tcp", listen_port=6443, destination_port=6443,
                                      proxyprotocol=False, health_check=check)],
        targets=[LoadBalancerTarget(type="label_selector", label_selector=selector)],
    )  # fmt: skip
    endpoint = _ip(lb.load_balancer)
    ips: dict[str, str] = {}
    for name, role in (("demo-cp-1", "control-plane"), ("demo-app-1", "worker")):
        created = await asyncio.to_thread(
            client.servers.create, name=name, server_type=ServerType(name="cx23"),
            image=Image(id=snapshot), labels={"cluster": "demo", "role": role},
        )  # fmt: skip
        ips[name] = _ip(created.server)

    bundle = load_secrets(_reference.REFERENCE / "talos" / "secrets.example.yaml")
    cluster = parse_config(
        f"name: demo\nlocation: fsn1\ntalos:\n  version: {VERSION}\ncontrol_plane:\n  count: 1\n"
        "workers:\n  - name: app\n    count: 1\n"
    )
    timing = Timing().scaled(SPEED)
    for name, ip in ips.items():
        pool = cluster.pool("cp" if "-cp-" in name else "app")
        config = render_machine_config(cluster, bundle, pool, endpoint=endpoint, hostname=name)

        async def apply(ip: str = ip, config: str = config) -> None:
            async with TalosClient([ip], insecure=True, timing=timing) as talos:
                [result] = await talos.apply_configuration(config.encode(), ApplyMode.AUTO)
                result.unwrap()

        await _until(threaded, apply, f"{name} in maintenance mode")

    talosconfig = generate_talosconfig("demo", bundle.os_ca, endpoints=[ips["demo-cp-1"]])
    creds = TalosCredentials(talosconfig.ca_pem, talosconfig.crt_pem, talosconfig.key_pem)
    async with TalosClient([ips["demo-cp-1"]], credentials=creds, timing=timing) as cp:

        async def configured() -> None:
            [result] = await cp.version()
            result.unwrap()

        await _until(threaded, configured, "the control plane configured")

        async def bootstrap() -> None:  # refused until CRI is up and the clock in sync
            assert await cp.bootstrap() is BootstrapOutcome.STARTED

        await _until(threaded, bootstrap, "etcd bootstrapped")
        kubeconfig = yaml.safe_load(await cp.kubeconfig())
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        yaml.safe_dump(kubeconfig, handle)
        handle.flush()
        api = k8s_config.new_client_from_config(config_file=handle.name)  # type: ignore[no-untyped-call]
    core = k8s.CoreV1Api(api)

    def registered() -> None:  # through the load balancer and the :6443 frontends
        assert sorted(_name(n) for n in core.list_node().items) == [*sorted(ips)]

    await _until(threaded, registered, "both nodes registered")
    return client, core


def _ip(resource: Any) -> str:
    return str(resource.public_net.ipv4.ip)


def _name(obj: Any) -> str:
    return str(obj.metadata.name)


def _watch_nodes(core: k8s.CoreV1Api) -> None:
    with contextlib.suppress(HTTPError, OSError):
        response: Any = core.list_node(watch=True, timeout_seconds=3600, _preload_content=False)
        for _ in response.stream():
            pass


async def _pending(threaded: ThreadedWorld) -> list[str]:
    async def others() -> list[str]:
        me = asyncio.current_task()
        return [repr(task) for task in asyncio.all_tasks() if task is not me]

    return await asyncio.to_thread(threaded.run, others())


@pytest.mark.parametrize("scenario", ["running", "destroyed"])
async def test_closing_a_world_leaves_no_pending_task(
    scenario: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``running``: closed with its cluster up (kube control loop, LB and :6443 forwarders,
    Talos nodes). ``destroyed``: closed after its servers were deleted, as after ``hk8s
    destroy`` (the control loop idle on its Event, Talos waiting for etcd quorum)."""
    caplog.set_level(logging.WARNING)
    with World.start_in_thread(speed=SPEED) as threaded:
        client, core = await _build_cluster(threaded)
        if scenario == "destroyed":
            servers = await asyncio.to_thread(client.servers.get_all)
            for server in servers:
                action = await asyncio.to_thread(client.servers.delete, server)
                await asyncio.to_thread(action.wait_until_finished, max_retries=5000)
            await threaded.world.clock.sleep(30.0)  # the world settles: nothing kicks it
            assert threaded.call(lambda: list(threaded.world.fleet.nodes)) == []
        else:
            assert await asyncio.to_thread(lambda: len(core.list_node().items)) == 2
            # A client watching (kubectl get -w, an operator) when the world goes away.
            watch = asyncio.create_task(asyncio.to_thread(_watch_nodes, core))
            await threaded.world.clock.sleep(10.0)
        await asyncio.to_thread(threaded.run, threaded.world.close())
        assert await _pending(threaded) == []
        if scenario == "running":
            await watch  # the stream ended with the world
        core.api_client.close()
    gc.collect()  # a task destroyed while pending is reported when it is collected
    loud = [r for r in caplog.records if r.name == "asyncio" or r.name.startswith("hk8s.sim")]
    assert [r.getMessage() for r in loud] == []


async def test_frontends_survive_overlapping_syncs() -> None:
    """The world's periodic sync and a Talos hook (a control plane going down) reconcile one
    cluster's :6443 frontends at once. Seen in a 3+10 ``destroy``: both computed the same
    stale difference and the second ``forwarders.pop(ip)`` raised KeyError."""
    upstream = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    frontends = KubeFrontends(upstream.sockets[0].getsockname()[:2])
    ips = {"127.9.0.1", "127.9.0.2", "127.9.0.3"}
    try:
        await frontends.sync(ips, port=0)
        assert set(frontends.forwarders) == ips
        await asyncio.gather(frontends.sync(set(), port=0), frontends.sync({"127.9.0.2"}, port=0))
        assert set(frontends.forwarders) <= {"127.9.0.2"}
        await frontends.close()
        await frontends.sync(ips, port=0)  # a hook racing the world's close: nothing listens
        assert frontends.forwarders == {}
    finally:
        await frontends.close()
        upstream.close()
        await upstream.wait_closed()


def test_sim_up_stops_quietly_on_ctrl_c() -> None:
    """Ctrl-C while the world is busy (a server being created and booting into rescue, a load
    balancer listening): exit 130, the CLI's "interrupted" code, and nothing on stderr but
    the banner."""
    proc = subprocess.Popen(
        [str(HK8S), "sim", "up", "--speed", str(SPEED)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        env: dict[str, str] = {}
        while not {"HCLOUD_ENDPOINT", "HCLOUD_TOKEN"} <= set(env):
            line = proc.stdout.readline()
            assert line, "sim up ended before printing its exports"
            key, _, value = line.strip().removeprefix("export ").partition("=")
            env[key] = value
        client = hcloud.Client(token=env["HCLOUD_TOKEN"], api_endpoint=env["HCLOUD_ENDPOINT"])
        client.load_balancers.create(
            name="api", load_balancer_type=LoadBalancerType(name="lb11"),
            location=Location(name="fsn1"),
            services=[LoadBalancerService(protocol="tcp", listen_port=6443,
                                          destination_port=6443, proxyprotocol=False)],
        )  # fmt: skip
        ssh_key = client.ssh_keys.create(name="k", public_key=_PUBLIC_KEY)
        created = client.servers.create(
            name="build", server_type=ServerType(name="cx23"),
            image=Image(name="ubuntu-24.04"), ssh_keys=[ssh_key], start_after_create=False,
        )  # fmt: skip
        created.action.wait_until_finished(max_retries=5000)
        rescue = created.server.enable_rescue(type="linux64")
        rescue.action.wait_until_finished(max_retries=5000)
        created.server.power_on()  # still under way when Ctrl-C comes
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert not [word for word in QUIET if word in stderr], stderr


_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1CgHB2wYw0HFPy5PZfTnK8Ct3hU2xRXdXxVnqqGmf shutdown"
)
