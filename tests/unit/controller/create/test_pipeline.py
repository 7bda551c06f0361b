"""Create does not wait for its slowest node before the cluster comes up, and the health
checks press on the nodes with a bound and give each one a budget."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from controller_support import FakeTalos, cluster
from hk8s.controller import create_cluster, desired_servers, pair_nodes
from hk8s.controller._health import HealthLimits, check_health
from hk8s.errors import UnavailableError
from hk8s.providers.talos import BootstrapOutcome, ServiceStatus, VersionInfo

if TYPE_CHECKING:
    from controller_support import Harness
    from hk8s.model import ManualClock

SLOW_BOOT = 300.0  # clock seconds before the slow worker's Talos API answers


class SlowWorker(FakeTalos):
    """demo-workers-1 boots slowly; every bootstrap is stamped with the clock's time."""

    clock: ManualClock
    bootstrapped_at: float | None = None

    async def version(self, node: str, *, maintenance: bool = False) -> VersionInfo:
        if self.name(node) == "demo-workers-1" and self.clock.now() < SLOW_BOOT:
            raise UnavailableError("connection refused")
        return await super().version(node, maintenance=maintenance)

    async def bootstrap(self, node: str) -> BootstrapOutcome:
        if self.bootstrapped_at is None:
            self.bootstrapped_at = self.clock.now()
        return await super().bootstrap(node)


async def test_etcd_is_bootstrapped_while_a_slow_worker_still_boots(harness: Harness) -> None:
    talos = SlowWorker(harness.hcloud)
    talos.clock = harness.clock
    harness.talos = harness.kube.talos = talos
    config = cluster(cp=3, workers=2)
    result = await create_cluster(config, harness.ports(config), harness.options())
    assert talos.bootstrapped_at is not None and talos.bootstrapped_at < SLOW_BOOT
    assert talos.members == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    assert "demo-workers-1" in result.configured  # it joined once it answered
    assert all(check.ok for check in result.health)


class Crowd:
    """Talos ``services`` of many nodes: counts calls in flight; ``silent`` never answer."""

    def __init__(self, silent: set[str]) -> None:
        self.silent = silent
        self.in_flight = 0
        self.peak = 0

    async def services(self, node: str) -> list[ServiceStatus]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if node in self.silent:
                await asyncio.Event().wait()  # a node that accepted the call and hangs
            await asyncio.sleep(0)
            return [ServiceStatus(n, "Running", True) for n in ("apid", "kubelet")]
        finally:
            self.in_flight -= 1

    async def etcd_members(self, node: str) -> list[object]:
        raise UnavailableError("not a control plane")


class NoKube:
    async def get(self, *args: object, **kwargs: object) -> None:
        raise UnavailableError("no API")


async def test_health_checks_are_bounded_and_a_hung_node_gets_only_its_budget(
    harness: Harness,
) -> None:
    config = cluster(cp=1, workers=40)
    await create_cluster(config, harness.ports(config), harness.options())
    servers = await harness.hcloud.list_servers()
    nodes = pair_nodes(desired_servers(config, cluster_id="x"), servers)
    workers = [n for n in nodes if not n.desired.control_plane]
    crowd = Crowd(silent={workers[7].address})
    checks = await check_health(
        crowd,  # type: ignore[arg-type]
        NoKube(),  # type: ignore[arg-type]
        workers,
        HealthLimits(concurrency=8, budget=0.05),
    )
    services = next(c for c in checks if c.name == "control plane services")
    assert crowd.peak == 8
    assert not services.ok
    assert services.detail == f"{workers[7].name}: no answer within 0.05s"


async def test_nodes_ready_is_counted_node_by_node() -> None:
    """ "nodes Ready 1/1" said nothing at 100 nodes: each node is a step of the phase, done as
    it becomes Ready, so the view shows "nodes Ready 37/100" and names the ones still waited for."""
    from hk8s.controller._report import RecordingReporter
    from hk8s.controller._waits import Waiter, wait_nodes_ready
    from hk8s.model.clock import ManualClock
    from hk8s.model.timing import Timing

    class Kube:
        def __init__(self) -> None:
            self.reads = 0

        async def list_nodes(self, *, retry: bool = True) -> list[Any]:
            self.reads += 1
            ready = {"a"} if self.reads < 3 else {"a", "b"}
            return [SimpleNamespace(name=n, ready=n in ready) for n in ("a", "b")]

        async def wait_nodes_ready(self, names: Any, *, timeout: float | None = None) -> None:
            while self.reads < 3:
                await asyncio.sleep(0)

    reporter = RecordingReporter()
    clock = ManualClock()
    waiter = Waiter(clock, Timing(), reporter)
    task = asyncio.ensure_future(wait_nodes_ready(Kube(), waiter, ["a", "b"]))  # type: ignore[arg-type]
    for _ in range(200):
        if task.done():
            break
        await asyncio.sleep(0)
        clock.advance(Timing().cluster_poll_interval)
    await task
    done = [e.key for e in reporter.events if e.kind == "done"]
    assert done == ["nodes/a", "nodes/b"]  # a first: it was Ready before b
    assert [e.key for e in reporter.events if e.kind == "planned"] == ["nodes/a", "nodes/b"]
