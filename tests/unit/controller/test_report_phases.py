"""Every progress event lands in a phase a person recognises, so 100 nodes read as ten lines."""

from __future__ import annotations

import pytest

from hk8s.controller import (
    Executor,
    RecordingReporter,
    Waiter,
    build_plan,
    phase_of,
)
from hk8s.controller._plan import Operation
from hk8s.errors import WaitTimeoutError
from hk8s.model import ManualClock, Timing


def test_keys_map_to_create_phases() -> None:
    assert phase_of("image/talos-v1.12.0-amd64") == "snapshots"
    assert phase_of("network/demo") == "infrastructure"
    assert phase_of("load-balancer/demo-api") == "infrastructure"
    assert phase_of("server/demo-workers-7") == "servers"
    assert phase_of("node/demo-workers-7") == "machine configs"
    assert phase_of("etcd") == "etcd"
    assert phase_of("kubeconfig") == "Kubernetes API"
    assert phase_of("kubernetes") == "Kubernetes API"
    assert phase_of("addon/cilium") == "addons"
    assert phase_of("nodes") == "nodes Ready"
    assert phase_of("health") == "health"
    # destroy's deletions inside the cluster, and a key nobody mapped yet
    assert phase_of("kubernetes/pvc/default/data") == "in-cluster cleanup"
    assert phase_of("volume/demo-data") == "volume"


async def test_executor_announces_every_step_before_running_any() -> None:
    reporter = RecordingReporter()

    async def ok(op: Operation, results: object) -> str:
        return "ok"

    ops = [Operation("create", "server", f"demo-workers-{i}", reason="") for i in range(3)]
    await Executor({"server": ok}, reporter, concurrency=1).run(build_plan(ops))
    kinds = [e.kind for e in reporter.events]
    assert kinds[:3] == ["planned"] * 3
    assert {e.phase for e in reporter.events} == {"servers"}


async def test_scale_down_steps_report_in_their_own_phase() -> None:
    reporter = RecordingReporter()

    async def ok(op: Operation, results: object) -> str:
        return "ok"

    ops = [Operation("delete", "server", "demo-workers-3", reason="")]
    await Executor({"server": ok}, reporter).run(build_plan(ops), phase="scale down")
    await Executor({"server": ok}, reporter).run(build_plan(ops), phase="infra and servers")
    assert [e.phase for e in reporter.events] == ["scale down"] * 3 + ["servers"] * 3


async def test_waiter_within_overrides_the_key_phase() -> None:
    reporter = RecordingReporter()
    waiter = Waiter(ManualClock(), Timing(), reporter)
    waiter.step("node/demo-cp-1", "apply machine config")
    waiter.within("etcd").step("node/demo-cp-1", "bootstrap etcd")
    assert [e.phase for e in reporter.events] == ["machine configs", "etcd"]


async def test_a_wait_that_times_out_is_reported_as_failed_before_it_raises() -> None:
    reporter = RecordingReporter()
    waiter = Waiter(ManualClock(), Timing(), reporter)

    async def never() -> tuple[bool, str]:
        return False, "connection refused"

    with pytest.raises(WaitTimeoutError):
        await waiter.until("node/demo-workers-50", "Talos API to answer", never, timeout=60)
    last = reporter.events[-1]
    assert (last.kind, last.key, last.phase) == (
        "failed",
        "node/demo-workers-50",
        "machine configs",
    )
    assert last.detail and "connection refused" in last.detail


async def test_a_step_says_which_hetzner_action_it_waits_on() -> None:
    """The provider notes the action; the executor reports it as what the step waits on."""
    from hk8s.model.progress import note

    reporter = RecordingReporter()

    async def create(op: Operation, results: object) -> str:
        note("Hetzner action 4711 (create_server)")
        return "ok"

    ops = [Operation("create", "server", "demo-workers-7", reason="")]
    await Executor({"server": create}, reporter).run(build_plan(ops))
    waiting = [e for e in reporter.events if e.kind == "waiting"]
    assert [(e.key, e.detail) for e in waiting] == [
        ("server/demo-workers-7", "Hetzner action 4711 (create_server)")
    ]
