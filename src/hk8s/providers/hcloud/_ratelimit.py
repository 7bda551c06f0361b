"""One rate limiter for every request hk8s sends to the Hetzner API.

Hetzner allows 3600 requests per hour per project, as a bucket that refills by one request per
second, and reports it on every response: ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (the UNIX time at which the bucket is full again); an empty bucket answers
429 ``rate_limit_exceeded`` (docs.hetzner.cloud, "Rate Limiting").

All concurrent work of one process shares one ``RateLimiter``: requests pass ``acquire()`` one
at a time. While ``Remaining`` is high nothing waits. Once the bucket runs low, requests are
paced at ``share`` times the refill rate. Other processes using the same token (parallel CI
pipelines) drain the same bucket, and we only learn about them from the headers and from 429s:
a 429 means the bucket is shared, so ``share`` halves, and it grows back additively while the
bucket shows slack (AIMD, as TCP congestion control, RFC 5681). N processes thereby converge
to splitting the refill rate instead of each sending at it; their pacing is jittered so they
do not fall into lock-step. Nothing sleeps directly: waits go through the injected ``Clock``.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hk8s.model.clock import Clock

__all__ = ["DEFAULT_TOKEN_INTERVAL", "RateLimiter", "Ticket"]

# Documented refill: one request per second. Used until headers tell us better.
DEFAULT_TOKEN_INTERVAL = 1.0
# RateLimit-Reset has whole-second resolution: trust the refill period derived from it only
# when that many tokens are missing, so the rounding is at most 1/20 of it (a small test
# bucket would otherwise give a period off by up to 2x).
_MIN_MISSING_FOR_INTERVAL = 20
_JITTER = 0.5  # paced gaps are uniform in [1 - _JITTER, 1 + _JITTER] x the mean while sharing


class Ticket(NamedTuple):
    """What ``acquire`` granted: when, and whether the request was paced (bucket known low)."""

    at: float
    paced: bool


class RateLimiter:
    """Shared pacing from the API's own rate-limit headers, with AIMD for a shared bucket.

    ``reserve`` requests are kept back so that several requests already in flight cannot
    overdraw the bucket: at or below it, requests are paced. ``token_interval`` is the
    documented refill period (scaled like every ``Timing`` value); the period derived from
    ``RateLimit-Reset`` replaces it but never exceeds twice it. ``share`` (1 = the whole refill
    rate) shrinks to ``min_share`` at most and grows back by ``recovery`` steps. ``epoch``
    reads the wall clock only to interpret ``RateLimit-Reset``, which is a UNIX time;
    injectable for tests, as is ``rng`` (jitter).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        token_interval: float = DEFAULT_TOKEN_INTERVAL,
        reserve: int = 4,
        epoch: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        min_share: float = 1 / 64,
        recovery: float = 1 / 32,
    ) -> None:
        self._clock = clock
        self._epoch = epoch
        self._rng = rng or random.Random()
        self._reserve = reserve
        self._max_interval = 2 * token_interval
        self._min_share = min_share
        self._recovery = recovery
        # RateLimit-Reset is wall time; a clock running N times faster needs N times as many
        # of its seconds for the same wall time (SystemClock: 1).
        self._speed = float(getattr(clock, "speed", 1.0))
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        # observe() runs in the library's worker threads, acquire() on the event loop.
        self._mutex = threading.Lock()
        # Unknown until the first response: let one request probe the bucket, pace the rest
        # until its headers arrive (a fresh process must not open with a burst into a bucket
        # another process may have emptied).
        self.remaining: int | None = reserve + 1
        self.limit: int | None = None
        self.interval = token_interval
        self.share = 1.0
        self.blocked_until = 0.0
        self._last_grant = clock.now()
        self._decreased_at = -math.inf
        self.waited = 0.0  # total clock seconds spent waiting, for tests and stats
        self.throttled = 0  # 429 responses seen

    @property
    def paced(self) -> bool:
        """True while requests go out one gap apart: the bucket is low, or known shared.

        Once a 429 showed that others drain the same bucket, a refill above ``reserve`` is no
        invitation to burst: every process would, and all would meet the empty bucket again.
        """
        if self.remaining is None:
            return False
        return self.remaining <= self._reserve or self.share < 1.0

    def gap(self) -> float:
        """Clock seconds between paced requests: the refill period over our share, jittered.

        At the whole refill rate (a single process, as far as we know) the gap is exact; once
        the bucket turned out to be shared it is jittered, so that processes which backed off
        at the same 429 do not come back in lock-step.
        """
        mean = self.interval / self.share
        if self.share >= 1.0:
            return mean
        return mean * self._rng.uniform(1 - _JITTER, 1 + _JITTER)

    async def acquire(self) -> Ticket:
        """Wait for permission to send one request; the ticket goes back to ``observe``."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # asyncio.Lock belongs to one event loop; a provider may outlive asyncio.run().
            self._loop, self._lock = loop, asyncio.Lock()
        async with self._lock:
            with self._mutex:
                now = self._clock.now()
                paced = self.paced
                delay = self.blocked_until - now
                if paced:
                    delay = max(delay, self._last_grant + self.gap() - now)
            if delay > 0:
                self.waited += delay
                await self._clock.sleep(delay)
            with self._mutex:
                self._last_grant = now = self._clock.now()
                if self.remaining is not None:
                    self.remaining = max(0, self.remaining - 1)
            return Ticket(now, paced)

    def observe(
        self, status: int, headers: Mapping[str, str], ticket: Ticket | None = None
    ) -> None:
        """Learn from a response: its rate-limit headers and whether it was a 429.

        ``ticket`` is what ``acquire`` returned for the request; without it a 429 blocks but
        does not shrink the share (nothing tells which burst it belongs to).
        """
        limit = _int(headers.get("RateLimit-Limit"))
        remaining = _int(headers.get("RateLimit-Remaining"))
        reset = _int(headers.get("RateLimit-Reset"))
        with self._mutex:
            if limit is not None:
                self.limit = limit
            if remaining is not None:
                self.remaining = remaining
            if reset is not None and limit is not None and remaining is not None:
                self._learn_interval(limit - remaining, reset)
            if status == 429:
                self._throttled(ticket)
            elif ticket is not None and ticket.paced and remaining is not None:
                self._succeeded(remaining)

    def _learn_interval(self, missing: int, reset: int) -> None:
        if missing >= _MIN_MISSING_FOR_INTERVAL:
            until_full = max(0.0, reset - self._epoch()) * self._speed
            # Time per refilled token, bounded so one odd header cannot stall everybody.
            self.interval = min(max(until_full / missing, 0.001), self._max_interval)

    def _throttled(self, ticket: Ticket | None) -> None:
        """A 429: nobody sends until a token is back for our share, which halves.

        An empty bucket we did not expect means somebody else drains it too (or our own
        burst met a stale header, which the halving also cures). The share halves once per
        burst: 429s of requests already in flight when we reacted do not count again (RFC
        5681 §3.1: one reduction per window). A 429 without a ticket only blocks.
        """
        self.throttled += 1
        self.remaining = 0
        now = self._clock.now()
        if ticket is not None and ticket.at > self._decreased_at:
            self.share = max(self._min_share, self.share / 2)
            self._decreased_at = now
        self.blocked_until = max(self.blocked_until, now + self.gap())

    def _succeeded(self, remaining: int) -> None:
        """A paced request got through: recover while the bucket shows slack.

        ``Remaining`` is what every process sharing the bucket sees, so it tells whether all
        of them together leave tokens over. Above half the limit (and ``reserve``) nobody is
        draining the bucket and the share doubles (TCP's slow start); a little slack grows it
        by ``recovery`` per success, so together the processes recover by one step per refill
        period, however many they are. At the very edge (nothing left) a process that already
        had to back off eases off a little more, before the next 429 would force it to.
        """
        if remaining > max(self._reserve, (self.limit or 0) // 2):
            self.share = min(1.0, self.share * 2)
        elif remaining > self._reserve // 2:
            self.share = min(1.0, self.share + self._recovery)
        elif remaining == 0 and self.share < 1.0:
            self.share = max(self._min_share, self.share * 0.9)

    def resume_at(self) -> float:
        """The clock time before which no request will be sent (after a 429)."""
        return self.blocked_until

    def reset_at(self) -> float | None:
        """The clock time at which the bucket should be full again, if the headers said."""
        if self.limit is None or self.remaining is None:
            return None
        return self._clock.now() + (self.limit - self.remaining) * self.interval


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
