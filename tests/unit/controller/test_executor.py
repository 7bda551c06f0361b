from __future__ import annotations

import asyncio

import pytest

from hk8s.controller import Executor, Operation, RecordingReporter, Results, build_plan
from hk8s.errors import NotFoundError, OperationsFailedError, TransientAPIError


def op(kind: str, name: str, *deps: str) -> Operation:
    return Operation("create", kind, name, "test", depends_on=deps)


class Recorder:
    """Handlers that record order and in-flight concurrency; ``gate`` holds them until set."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.fail = fail or {}
        self.order: list[str] = []
        self.running = 0
        self.peak = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, operation: Operation, results: Results) -> object:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(0)
            await self.gate.wait()
            self.order.append(operation.key)
            if operation.key in self.fail:
                raise self.fail[operation.key]
            return f"id-of-{operation.name}"
        finally:
            self.running -= 1


async def test_independent_operations_run_concurrently() -> None:
    rec = Recorder()
    rec.gate.clear()
    plan = build_plan([op("placement-group", f"pg-{i}") for i in range(5)])
    task = asyncio.create_task(Executor({"placement-group": rec}).run(plan))
    for _ in range(10):
        await asyncio.sleep(0)
    assert rec.running == 5  # all started before any finished
    rec.gate.set()
    results = await task
    assert results.of("placement-group", "pg-3") == "id-of-pg-3"


async def test_concurrency_is_bounded() -> None:
    rec = Recorder()
    plan = build_plan([op("placement-group", f"pg-{i}") for i in range(10)])
    await Executor({"placement-group": rec}, concurrency=3).run(plan)
    assert rec.peak == 3
    assert len(rec.order) == 10


async def test_dependent_operations_wait_and_see_results() -> None:
    seen: dict[str, object] = {}

    async def network(operation: Operation, results: Results) -> object:
        await asyncio.sleep(0)
        return 17

    async def lb(operation: Operation, results: Results) -> object:
        seen["network"] = results.of("network", "n")
        return None

    plan = build_plan([op("load-balancer", "lb"), op("network", "n")])
    await Executor({"network": network, "load-balancer": lb}).run(plan)
    assert seen == {"network": 17}


async def test_failure_skips_dependents_but_not_independent_work() -> None:
    rec = Recorder(fail={"network/n": NotFoundError("boom")})
    reporter = RecordingReporter()
    plan = build_plan([op("network", "n"), op("load-balancer", "lb"), op("firewall", "fw")])
    handlers = {"network": rec, "load-balancer": rec, "firewall": rec}
    with pytest.raises(NotFoundError, match="boom"):
        await Executor(handlers, reporter).run(plan)
    assert "firewall/fw" in rec.order
    assert "load-balancer/lb" not in rec.order
    assert reporter.kinds("failed") == ["network/n"]
    assert reporter.kinds("skipped") == ["load-balancer/lb"]
    assert reporter.kinds("done") == ["firewall/fw"]
    skipped = next(e for e in reporter.events if e.kind == "skipped")
    assert skipped.detail is not None and "network/n" in skipped.detail


async def test_several_failures_are_aggregated() -> None:
    errors = {"firewall/a": TransientAPIError("a failed"), "firewall/b": NotFoundError("b failed")}
    rec = Recorder(fail=dict(errors))
    plan = build_plan([op("firewall", "a"), op("firewall", "b"), op("firewall", "c")])
    with pytest.raises(OperationsFailedError) as info:
        await Executor({"firewall": rec}).run(plan, phase="infra")
    assert sorted(str(e) for e in info.value.errors) == ["a failed", "b failed"]
    assert info.value.phase == "infra"
    assert "2 operation(s) failed" in str(info.value)


async def test_unknown_kind_is_rejected_before_anything_runs() -> None:
    rec = Recorder()
    with pytest.raises(ValueError, match="no handler"):
        await Executor({"network": rec}).run(build_plan([op("network", "n"), op("server", "s")]))
    assert rec.order == []


async def test_steps_are_reported_in_order() -> None:
    reporter = RecordingReporter()
    await Executor({"network": Recorder()}, reporter).run(build_plan([op("network", "n")]))
    assert [(e.kind, e.title) for e in reporter.events] == [
        ("planned", "create network n"),
        ("started", "create network n"),
        ("done", "create network n"),
    ]


async def test_no_slot_count_by_default_so_slow_actions_do_not_queue_in_waves() -> None:
    # 100 servers waiting on their create actions: every one is in flight at once (the
    # provider paces the requests themselves); 16 slots held for the actions' duration made
    # 100 servers come up in 7 waves.
    rec = Recorder()
    rec.gate.clear()
    plan = build_plan([op("placement-group", f"pg-{i}") for i in range(100)])
    task = asyncio.create_task(Executor({"placement-group": rec}).run(plan))
    for _ in range(10):
        await asyncio.sleep(0)
    assert rec.running == 100
    rec.gate.set()
    await task


async def test_a_step_left_out_does_not_fail_the_phase() -> None:
    """A server Hetzner never starts is left out: the phase succeeds with the others, the
    step is reported failed with its reason, and its dependents are skipped."""
    from hk8s.controller._executor import LeftOut

    rec = Recorder(fail={"server/w-2": LeftOut("server w-2 is stuck in 'starting'")})
    reporter = RecordingReporter()
    plan = build_plan([op("server", "w-1"), op("server", "w-2"), op("volume", "v", "server/w-2")])
    results = await Executor({"server": rec, "volume": rec}, reporter).run(plan)
    assert results.left_out == {"server/w-2": "server w-2 is stuck in 'starting'"}
    assert results.of("server", "w-1") == "id-of-w-1"
    assert reporter.kinds("failed") == ["server/w-2"]
    assert reporter.kinds("skipped") == ["volume/v"]
