"""Servers created together start together: one Hetzner keeps in "starting" is left behind
after a while measured on its peers, not after the 15-minute action timeout (#16)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hk8s.controller._stragglers import Stragglers
from hk8s.errors import WaitTimeoutError
from hk8s.model.clock import ManualClock
from hk8s.model.timing import Timing


async def _create(clock: ManualClock, seconds: float, name: str) -> str:
    """A server create whose actions finish after ``seconds`` (the provider's own action
    timeout, 900 s, ends a longer one)."""
    if seconds > 900:
        await clock.sleep(900)
        raise WaitTimeoutError(f"server {name} to be created and running", 900)
    await clock.sleep(seconds)
    return name


async def _drive(clock: ManualClock, work: asyncio.Future[Any]) -> None:
    """Move time a second at a time, letting every task run between steps."""
    while not work.done():
        for _ in range(10):
            await asyncio.sleep(0)
        clock.advance(1.0)


async def _run(durations: dict[str, float]) -> tuple[dict[str, object], dict[str, float]]:
    clock = ManualClock(auto=False)
    gate = Stragglers(clock, Timing())
    ended: dict[str, float] = {}

    async def one(name: str, seconds: float) -> object:
        try:
            return await gate.run(
                f"server {name} to be created and running", _create(clock, seconds, name)
            )
        except WaitTimeoutError as exc:
            return exc
        finally:
            ended[name] = clock.now()

    work = asyncio.gather(*(one(n, s) for n, s in durations.items()))
    await _drive(clock, work)
    results = await work
    return dict(zip(durations, results, strict=True)), ended


async def test_a_server_left_in_starting_is_given_up_on_long_before_the_action_timeout() -> None:
    durations = {f"w-{i}": 40.0 + i for i in range(4)} | {"stuck": 10_000.0}
    results, ended = await _run(durations)
    assert [results[f"w-{i}"] for i in range(4)] == [f"w-{i}" for i in range(4)]
    stuck = results["stuck"]
    assert isinstance(stuck, WaitTimeoutError)
    assert "server stuck to be created and running" in stuck.message
    assert "the others took at most 43s" in stuck.message
    # Timing.straggler_after (180 s) beats 3 x 43 s; checked every action_poll_max (10 s).
    assert 180 <= ended["stuck"] <= 190


async def test_patience_follows_the_slowest_peer() -> None:
    """Others took 90-100 s: one at 250 s is only slow (kept, as 250 < 3 x 100) and raises
    the bar: the one still starting is left at 3 x 250 s."""
    results, ended = await _run({"a": 100.0, "b": 90.0, "slow": 250.0, "stuck": 5000.0})
    assert results["slow"] == "slow"
    assert isinstance(results["stuck"], WaitTimeoutError)
    assert "at most 250s" in results["stuck"].message
    assert 750 <= ended["stuck"] <= 760


@pytest.mark.parametrize(
    "durations",
    [
        {"only": 600.0},  # nothing to compare with: the action timeout decides
        {"a": 400.0, "b": 410.0, "c": 420.0},  # all slow together: no one is behind
        {"a": 40.0, "b": 700.0, "c": 700.0},  # fewer than half done when it would count
    ],
)
async def test_without_peers_ahead_a_slow_create_is_waited_for(durations: dict[str, float]) -> None:
    results, _ = await _run(durations)
    assert results == {name: name for name in durations}


async def test_a_failed_create_sets_no_baseline() -> None:
    """A create that fails fast is no measure of how long starting takes."""
    clock = ManualClock(auto=False)
    gate = Stragglers(clock, Timing())

    async def fails() -> str:
        await clock.sleep(1)
        raise RuntimeError("invalid input")

    first = asyncio.ensure_future(gate.run("server bad to be created", fails()))
    second = asyncio.ensure_future(
        gate.run("server slow to be created", _create(clock, 600.0, "slow"))
    )
    await _drive(clock, asyncio.gather(first, second, return_exceptions=True))
    with pytest.raises(RuntimeError):
        await first
    assert await second == "slow"
