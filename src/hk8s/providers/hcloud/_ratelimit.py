"""One rate limiter for every request hk8s sends to the Hetzner API.

Hetzner allows 3600 requests per hour per project, as a bucket that refills by one request per
second, and reports it on every response: ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (the UNIX time at which the bucket is full again); an empty bucket answers
429 ``rate_limit_exceeded`` (docs.hetzner.cloud, "Rate Limiting").

All concurrent work shares one ``RateLimiter``: requests pass ``acquire()`` one at a time, so
while the bucket is nearly empty they are paced at the refill rate instead of all firing and
all getting 429; after a 429 every caller waits until a token is back. Nothing sleeps directly:
waits go through the injected ``Clock``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hk8s.model.clock import Clock

__all__ = ["DEFAULT_TOKEN_INTERVAL", "RateLimiter"]

# Documented refill: one request per second. Used until headers tell us better.
DEFAULT_TOKEN_INTERVAL = 1.0


class RateLimiter:
    """Shared pacing from the API's own rate-limit headers.

    ``reserve`` requests are kept back so that several requests already in flight cannot
    overdraw the bucket. ``token_interval`` is the documented refill period (scaled like every
    ``Timing`` value); the period derived from ``RateLimit-Reset`` replaces it but never
    exceeds twice it (``Reset`` has whole-second resolution). ``epoch`` reads the wall clock
    only to interpret ``RateLimit-Reset``, which is a UNIX time; injectable for tests.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        token_interval: float = DEFAULT_TOKEN_INTERVAL,
        reserve: int = 4,
        epoch: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._epoch = epoch
        self._reserve = reserve
        self._max_interval = 2 * token_interval
        # RateLimit-Reset is wall time; a clock running N times faster needs N times as many
        # of its seconds for the same wall time (SystemClock: 1).
        self._speed = float(getattr(clock, "speed", 1.0))
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Unknown until the first response: let one request probe the bucket, pace the rest
        # until its headers arrive (a fresh process must not open with a burst into a bucket
        # another process may have emptied).
        self.remaining: int | None = reserve + 1
        self.limit: int | None = None
        self.interval = token_interval
        self.blocked_until = 0.0
        self.waited = 0.0  # total clock seconds spent waiting, for tests and stats
        self.throttled = 0  # 429 responses seen

    async def acquire(self) -> None:
        """Wait for permission to send one request."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # asyncio.Lock belongs to one event loop; a provider may outlive asyncio.run().
            self._loop, self._lock = loop, asyncio.Lock()
        async with self._lock:
            delay = self.blocked_until - self._clock.now()
            if delay <= 0 and self.remaining is not None and self.remaining <= self._reserve:
                delay = self.interval
            if delay > 0:
                self.waited += delay
                await self._clock.sleep(delay)
                if self.remaining is not None:
                    self.remaining += 1  # one token refilled while we waited
            if self.remaining is not None:
                self.remaining = max(0, self.remaining - 1)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response: its rate-limit headers and whether it was a 429."""
        limit = _int(headers.get("RateLimit-Limit"))
        remaining = _int(headers.get("RateLimit-Remaining"))
        reset = _int(headers.get("RateLimit-Reset"))
        if limit is not None:
            self.limit = limit
        if remaining is not None:
            self.remaining = remaining
        if reset is not None and limit is not None and remaining is not None:
            missing = limit - remaining
            if missing > 0:
                until_full = max(0.0, reset - self._epoch()) * self._speed
                # Time per refilled token, bounded so one odd header cannot stall everybody.
                self.interval = min(max(until_full / missing, 0.001), self._max_interval)
        if status == 429:
            self.throttled += 1
            self.remaining = 0
            self.blocked_until = max(self.blocked_until, self._clock.now() + self.interval)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
