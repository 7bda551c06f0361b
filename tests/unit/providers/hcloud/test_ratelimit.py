"""Pacing for a shared rate-limit bucket as pure logic (ManualClock): AIMD, 429s, deadline."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import statistics
from typing import Any

import pytest

from hk8s.model import ManualClock
from hk8s.providers.hcloud import RateLimiter
from hk8s.providers.hcloud._ratelimit import Ticket

EPOCH = 1_000_000.0  # the wall clock (UNIX time) when the ManualClock reads 0


class Bucket:
    """Hetzner's bucket as the API answers it: ``limit`` tokens, one back per second."""

    def __init__(self, clock: ManualClock, limit: int = 10) -> None:
        self.clock = clock
        self.limit = limit
        self.tokens = float(limit)
        self.at = clock.now()
        self.served = self.throttled = 0

    def take(self) -> tuple[int, dict[str, str]]:
        now = self.clock.now()
        self.tokens = min(float(self.limit), self.tokens + (now - self.at))
        self.at = now
        status = 200 if self.tokens >= 1 else 429
        if status == 200:
            self.tokens -= 1
            self.served += 1
        else:
            self.throttled += 1
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(math.floor(self.tokens)),
            "RateLimit-Reset": str(math.ceil(EPOCH + now + self.limit - self.tokens)),
        }
        return status, headers


def limiter(clock: ManualClock, seed: int = 1) -> RateLimiter:
    return RateLimiter(clock, epoch=lambda: EPOCH + clock.now(), rng=random.Random(seed))


def low(remaining: int, limit: int = 3600) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(int(EPOCH + limit - remaining)),
    }


async def test_a_429_halves_the_share_once_per_burst() -> None:
    clock = ManualClock()
    rl = limiter(clock)
    burst = [Ticket(0.0, paced=False) for _ in range(3)]
    for ticket in burst:  # three requests in flight together, all 429
        rl.observe(429, low(0), ticket)
    assert rl.share == 0.5
    clock.advance(5.0)
    rl.observe(429, low(0), Ticket(clock.now(), paced=True))  # sent after we reacted
    assert rl.share == 0.25
    assert rl.throttled == 4


async def test_after_a_429_nobody_sends_before_a_token_is_back_for_our_share() -> None:
    clock = ManualClock()
    rl = limiter(clock)
    # The bucket is empty; the Reset header says one token per 2 s (7200 s for 3600).
    rl.observe(429, {**low(0), "RateLimit-Reset": str(int(EPOCH + 7200))}, Ticket(0.0, True))
    assert rl.interval == pytest.approx(2.0)
    assert rl.share == 0.5
    await rl.acquire()
    # Our half of the refill rate is one request per 4 s, jittered by at most half of that.
    assert 2.0 <= clock.now() <= 6.0


async def test_shared_pacing_is_jittered_and_below_the_refill_rate() -> None:
    clock = ManualClock()
    rl = limiter(clock)
    rl.observe(429, low(0), Ticket(0.0, True))
    rl.observe(429, low(0), Ticket(clock.now() + 0.1, True))
    assert rl.share == 0.25
    times = []
    for _ in range(40):
        await rl.acquire()
        times.append(clock.now())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.mean(gaps) == pytest.approx(4.0, rel=0.2)  # a quarter of 1/s
    assert min(gaps) >= 2.0 - 1e-9 and max(gaps) <= 6.0 + 1e-9
    assert len({round(g, 6) for g in gaps}) > 30  # not in lock-step with anybody


async def test_the_share_recovers_additively_with_slack_and_fast_when_the_bucket_fills() -> None:
    clock = ManualClock()
    rl = limiter(clock)
    rl.observe(429, low(0), Ticket(0.0, True))
    assert rl.share == 0.5
    rl.observe(200, low(0), Ticket(1.0, True))  # at the edge: ease off
    assert rl.share == pytest.approx(0.45)
    rl.observe(200, low(1), Ticket(2.0, True))  # almost nothing over: hold
    assert rl.share == pytest.approx(0.45)
    rl.observe(200, low(3), Ticket(3.0, True))  # some slack: one additive step
    assert rl.share == pytest.approx(0.45 + 1 / 32)
    rl.observe(200, low(3000), Ticket(4.0, True))  # nobody drains it: slow start
    rl.observe(200, low(3000), Ticket(5.0, True))
    assert rl.share == 1.0
    assert not rl.paced  # back to full speed: no waiting while Remaining is high


async def test_a_single_process_is_as_fast_as_the_bucket_allows() -> None:
    clock = ManualClock()
    rl = limiter(clock)
    rl.observe(200, low(3000), Ticket(0.0, False))
    for _ in range(50):
        await rl.acquire()
    assert clock.slept == []  # a full bucket: nothing waits
    rl.observe(200, low(2), Ticket(0.0, False))
    for _ in range(5):
        await rl.acquire()
    assert clock.slept == [1.0] * 5  # low: exactly the refill rate, no jitter, no back-off


async def run_in_steps(clock: ManualClock, work: asyncio.Future[Any], step: float) -> None:
    """Advance ``clock`` by ``step`` whenever every task waits on it, until ``work`` is done.

    ``ManualClock(auto=True)`` jumps once per queued sleeper, which wakes many sleepers
    together and late; fixed steps keep concurrent limiters' timing true to within ``step``.
    """
    while not work.done():
        for _ in range(5):  # let every woken task run until it sleeps again
            await asyncio.sleep(0)
        clock.advance(step)
    await work


async def test_processes_sharing_a_bucket_converge_to_sharing_the_refill_rate() -> None:
    clock = ManualClock(auto=False)
    bucket = Bucket(clock, limit=10)
    limiters = [limiter(clock, seed=i) for i in range(8)]
    per_process = 40
    opening = 30.0  # each halves its share from 1 towards 1/8: about log2(8) 429s apiece
    later: list[int] = []

    async def worker(rl: RateLimiter) -> None:
        done = 0
        while done < per_process:
            ticket = await rl.acquire()
            status, headers = bucket.take()
            rl.observe(status, headers, ticket)
            done += status == 200
            if clock.now() > opening:
                later.append(status)

    work = asyncio.gather(*(worker(rl) for rl in limiters))
    await run_in_steps(clock, work, step=0.05)
    assert bucket.served == 8 * per_process
    # Each of them sending at the refill rate would meet an empty bucket 3 times in 4 (76%).
    assert bucket.throttled / (bucket.served + bucket.throttled) < 0.15
    assert later.count(429) / len(later) < 0.06  # once they have found their shares
    # ... while together they still used most of the refill rate.
    assert clock.now() < 1.3 * (bucket.served - bucket.limit)
