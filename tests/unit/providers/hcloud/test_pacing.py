"""Rate limiter, backoff and batched action waiting as pure logic (ManualClock)."""

from __future__ import annotations

import asyncio
import random

import pytest

from hk8s.errors import ActionFailedError, WaitTimeoutError
from hk8s.model import ManualClock, Timing
from hk8s.model.resources import Action
from hk8s.providers.hcloud import ActionWaiter, RateLimiter
from hk8s.providers.hcloud._transport import backoff_delay


def headers(remaining: int, reset_in: float, now: float = 1000.0) -> dict[str, str]:
    return {
        "RateLimit-Limit": "3600",
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(int(now + reset_in)),
    }


async def test_full_bucket_does_not_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, epoch=lambda: 1000.0)
    limiter.observe(200, headers(3000, 600))
    for _ in range(10):
        await limiter.acquire()
    assert clock.slept == []


async def test_low_bucket_paces_at_the_refill_rate_from_the_headers() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, epoch=lambda: 1000.0)
    # 100 tokens missing, full again in 100 s: one token per second.
    limiter.observe(200, headers(3500, 100))
    assert limiter.interval == pytest.approx(1.0)
    limiter.observe(200, headers(2, 3598))
    for _ in range(3):
        await limiter.acquire()
    assert clock.slept == pytest.approx([1.0, 1.0, 1.0])


async def test_429_blocks_every_caller_until_a_token_is_back() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, epoch=lambda: 1000.0)
    limiter.observe(429, headers(0, 3600))
    assert limiter.throttled == 1
    await asyncio.gather(*(limiter.acquire() for _ in range(3)))
    # One after another, one refill interval apart: no burst into the empty bucket.
    assert clock.now() == pytest.approx(3.0)


async def test_odd_reset_header_cannot_stall_everybody() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, token_interval=1.0, epoch=lambda: 1000.0)
    limiter.observe(200, headers(0, 10_000_000))
    assert limiter.interval == 2.0


def test_backoff_is_jittered_exponential_and_capped() -> None:
    timing = Timing()
    rng = random.Random(3)
    delays = [backoff_delay(a, timing, rng) for a in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(timing.retry_max, timing.retry_initial * 2**attempt)
        assert timing.retry_initial <= delay <= ceiling
    assert len(set(delays)) > 5  # jitter


class FakeActions:
    """Actions finishing after ``polls`` batched polls; records every batch."""

    def __init__(self, finish_after: dict[int, int], fail: set[int] | None = None) -> None:
        self.finish_after = finish_after
        self.fail = fail or set()
        self.batches: list[list[int]] = []

    async def fetch(self, ids: list[int]) -> list[Action]:
        self.batches.append(ids)
        out = []
        for i in ids:
            seen = sum(i in b for b in self.batches)
            if seen < self.finish_after.get(i, 1):
                out.append(Action(i, "create_server", "running"))
            elif i in self.fail:
                out.append(Action(i, "create_server", "error", 100, "boom", "disk on fire"))
            else:
                out.append(Action(i, "create_server", "success", 100))
        return out


def running(*ids: int) -> list[Action]:
    return [Action(i, "create_server", "running") for i in ids]


async def test_concurrent_waiters_share_batches_of_at_most_25() -> None:
    fake = FakeActions({i: 2 for i in range(60)})
    waiter = ActionWaiter(fake.fetch, ManualClock(), Timing())
    await asyncio.gather(*(waiter.wait(running(i)) for i in range(60)))
    assert max(len(b) for b in fake.batches) == 25
    assert len(fake.batches) == 6  # 60 ids = 3 batches, polled twice


async def test_poll_interval_backs_off_to_the_cap() -> None:
    clock = ManualClock()
    timing = Timing()
    fake = FakeActions({1: 12})
    await ActionWaiter(fake.fetch, clock, timing).wait(running(1))
    assert clock.slept[0] == timing.action_poll_initial
    assert clock.slept == sorted(clock.slept)
    assert clock.slept[-1] == timing.action_poll_max


async def test_failed_action_raises_with_its_error() -> None:
    fake = FakeActions({7: 1}, fail={7})
    waiter = ActionWaiter(fake.fetch, ManualClock(), Timing())
    with pytest.raises(ActionFailedError, match="disk on fire") as info:
        await waiter.wait(running(7))
    assert info.value.context["action_id"] == 7
    assert info.value.context["code"] == "boom"


async def test_finished_actions_need_no_poll() -> None:
    fake = FakeActions({})
    waiter = ActionWaiter(fake.fetch, ManualClock(), Timing())
    await waiter.wait([Action(3, "create_server", "success", 100)])
    assert fake.batches == []


async def test_action_wait_times_out() -> None:
    clock = ManualClock()
    fake = FakeActions({1: 10_000})
    with pytest.raises(WaitTimeoutError, match="action 1"):
        await ActionWaiter(fake.fetch, clock, Timing()).wait(running(1))
    assert clock.now() >= Timing().action_timeout


def test_limiter_and_waiter_survive_a_new_event_loop() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock, epoch=lambda: 1000.0)
    fake = FakeActions({1: 2, 2: 2})
    waiter = ActionWaiter(fake.fetch, clock, Timing())

    async def once(action_id: int) -> None:
        limiter.observe(429, headers(0, 3600))
        await asyncio.gather(limiter.acquire(), limiter.acquire())
        await waiter.wait(running(action_id))

    asyncio.run(once(1))
    asyncio.run(once(2))  # a provider reused by a second asyncio.run()
    assert [b for b in fake.batches if 2 in b]


async def test_a_wait_notes_the_actions_for_the_step_running_it() -> None:
    from hk8s.model.progress import noting

    seen: list[str] = []
    waiter = ActionWaiter(FakeActions({7: 2, 8: 2}).fetch, ManualClock(), Timing())
    with noting(seen.append):
        await waiter.wait(running(7, 8))
    await waiter.wait(running(9))  # outside a step: nobody to tell
    assert seen == ["Hetzner action 7 (create_server), 8 (create_server)"]


class ProgressingAction:
    """One action taking ``duration`` clock seconds that reports its progress, as Hetzner does."""

    def __init__(self, clock: ManualClock, duration: float) -> None:
        self.clock = clock
        self.duration = duration
        self.polled_at: list[float] = []

    async def fetch(self, ids: list[int]) -> list[Action]:
        now = self.clock.now()
        self.polled_at.append(now)
        if now >= self.duration:
            return [Action(ids[0], "create_server", "success", 100)]
        return [Action(ids[0], "create_server", "running", int(100 * now / self.duration))]


async def test_the_next_poll_is_due_when_progress_says_the_action_ends() -> None:
    # An 18 s server create: a fixed backoff polls 1, 2.5, 4.75, 8.1, 13.2 and 20.8 s in and
    # sees it done 2.8 s late; going by its progress, 3 polls and done on time.
    clock = ManualClock()
    action = ProgressingAction(clock, 18.0)
    await ActionWaiter(action.fetch, clock, Timing()).wait(running(1))
    assert action.polled_at[0] == Timing().action_poll_initial
    assert len(action.polled_at) <= 4
    assert 18.0 <= action.polled_at[-1] <= 19.0


async def test_an_action_arriving_during_a_long_pause_is_polled_soon() -> None:
    clock = ManualClock(auto=False)
    slow = ProgressingAction(clock, 60.0)
    quick: list[float] = []

    async def fetch(ids: list[int]) -> list[Action]:
        found = await slow.fetch([1]) if 1 in ids else []
        if 2 in ids:
            quick.append(clock.now())
            found.append(Action(2, "set_firewall_rules", "success", 100))
        return found

    async def settle() -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    waiter = ActionWaiter(fetch, clock, Timing())
    long_wait = asyncio.create_task(waiter.wait(running(1)))
    for step in (1.0, 10.0):  # two polls: the server create is due in about 50 s
        await settle()
        clock.advance(step)
    await settle()
    assert slow.polled_at == [1.0, 11.0]
    short = asyncio.create_task(waiter.wait(running(2)))
    await settle()
    clock.advance(Timing().action_poll_initial)
    await short
    assert quick == [12.0]  # not at 21 s, the end of the pause it arrived in
    clock.advance(60.0)
    await settle()
    clock.advance(10.0)
    await long_wait


class TimedActions:
    """Actions by id: (started, duration) in clock seconds, reporting progress as Hetzner
    does (the simulator's start action runs from the create on, as a server boots)."""

    def __init__(self, clock: ManualClock, actions: dict[int, tuple[float, float]]) -> None:
        self.clock = clock
        self.actions = actions
        self.polled_at: list[float] = []

    async def fetch(self, ids: list[int]) -> list[Action]:
        now = self.clock.now()
        self.polled_at.append(now)
        out = []
        for i in ids:
            started, duration = self.actions[i]
            if now >= started + duration:
                out.append(Action(i, "create_server", "success", 100))
            else:
                progress = int(100 * max(0.0, now - started) / duration)
                out.append(Action(i, "create_server", "running", progress))
        return out


async def test_servers_created_together_are_polled_together_until_they_run() -> None:
    # Three servers submitted 0.2 s apart, each a create (10 s) and a start action (18 s from
    # the create on), each server one wait. Polling when the soonest create ends, and again
    # for each server's start, made six polls of a 3+3 create; a server's wait ends with its
    # start, and starts due within a second of each other are one poll.
    clock = ManualClock()
    servers = {n: (2 * n, 2 * n + 1) for n in range(3)}  # server -> (create id, start id)
    actions = {}
    for n, (create, start) in servers.items():
        actions[create] = (0.2 * n, 10.0)
        actions[start] = (0.2 * n, 18.0)
    fake = TimedActions(clock, actions)
    waiter = ActionWaiter(fake.fetch, clock, Timing())
    await asyncio.gather(*(waiter.wait(running(*ids)) for ids in servers.values()))
    assert len(fake.polled_at) <= 3, fake.polled_at
    assert 18.4 <= fake.polled_at[-1] <= 19.5  # all running, the last one on time
