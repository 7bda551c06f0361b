"""The action engine and events on a manual clock: progress, locking, failures, listeners."""

from __future__ import annotations

import asyncio

from hk8s.model.clock import ManualClock
from hk8s.sim.hcloud import ActionFailure, FaultInjector, FaultSpec, HcloudState, SimEvent
from hk8s.sim.hcloud._catalog import LOCATIONS, SERVER_TYPES
from hk8s.sim.hcloud._model import Action, Server


def make_server(state: HcloudState) -> Server:
    server = Server(state.next_id(), "s", SERVER_TYPES["cx23"], LOCATIONS["fsn1"], None, {}, 0.0)
    state.servers[server.id] = server
    return server


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_action_runs_with_progress_then_succeeds_and_unlocks() -> None:
    clock = ManualClock(auto=False)
    state = HcloudState(clock=clock)
    server = make_server(state)
    done: list[Action] = []
    action = state.start_action(
        "reboot_server", [(server.id, "server")], 10.0, lock=[server], done=done.append
    )
    await settle()
    assert (action.status, state.progress(action), server.locked) == ("running", 0, True)
    clock.advance(5.0)
    await settle()
    assert state.progress(action) == 50 and action.status == "running"
    clock.advance(5.0)
    await settle()
    assert (action.status, state.progress(action), server.locked) == ("success", 100, False)
    assert done == [action] and action.finished == 10.0
    assert state.iso(action.finished) is not None
    await state.close()


async def test_failures_from_completion_and_from_faults() -> None:
    clock = ManualClock(auto=True)
    faults = FaultInjector(FaultSpec.parse({"actions": [{"command": "create_image"}]}))
    state = HcloudState(clock=clock, faults=faults)

    def refuse(_action: Action) -> None:
        raise ActionFailure("image_deleted", "gone")

    first = state.start_action("rebuild_server", [], 1.0, done=refuse)
    second = state.start_action("create_image", [], 1.0)
    await settle()
    await asyncio.sleep(0.01)
    assert (first.status, first.error) == ("error", ("image_deleted", "gone"))
    assert second.status == "error" and second.error is not None
    await state.close()


async def test_listeners_sync_async_and_broken() -> None:
    state = HcloudState(clock=ManualClock())
    seen: list[str] = []

    def broken(_event: SimEvent) -> None:
        raise RuntimeError("listener bug")

    async def later(event: SimEvent) -> None:
        seen.append(f"async {event.kind}")

    state.subscribe(broken)
    unsubscribe = state.subscribe(lambda e: seen.append(e.kind))
    state.subscribe(later)
    state.emit("server_booted")
    await settle()
    unsubscribe()
    state.emit("server_deleted")
    await settle()
    assert seen == ["server_booted", "async server_booted", "async server_deleted"]
    await state.close()


def test_addresses_are_distinct_loopback_and_private_allocation() -> None:
    state = HcloudState(clock=ManualClock())
    ips = {state.allocate_server_ip() for _ in range(600)}
    assert len(ips) == 600 and all(ip.startswith("127.1.") for ip in ips)
    assert not any(ip.endswith((".0", ".1", ".255")) for ip in ips)
    assert state.allocate_lb_ip().startswith("127.2.")


def test_address_ranges_are_configurable() -> None:
    # Worlds running side by side use separate loopback blocks.
    state = HcloudState(clock=ManualClock(), server_ips="127.40.0.0/17", lb_ips="127.40.128.0/17")
    assert state.allocate_server_ip() == "127.40.0.2"
    assert state.allocate_lb_ip() == "127.40.128.2"
