"""One clock for every wait, poll, backoff and timeout in hk8s and its simulator.

Nothing in hk8s calls ``time.sleep``/``asyncio.sleep`` or reads ``time.monotonic`` directly:
it asks a ``Clock``. The simulator and the client share a *speed*: at speed 20 a 60 s server
boot takes 3 s of wall time, and a client whose ``Timing`` is scaled by the same factor polls
20 times as often, so a whole cluster's life runs in seconds while every ratio stays real.

>>> clock = ScaledClock(speed=10.0)
>>> # await clock.sleep(5.0) returns after 0.5 s of wall time; clock.now() advanced by ~5.0
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import asyncio

__all__ = ["Clock", "ManualClock", "ScaledClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in (simulated) seconds, and sleeping in the same unit."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class ScaledClock:
    """Real time run ``speed`` times faster. ``speed=1`` is the system clock."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    def wall(self, seconds: float) -> float:
        """How much wall time ``seconds`` of clock time take."""
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        # asyncio is imported where it is used: `hk8s version` and `--help` load this module
        # and never sleep (~15 ms of their start; tests/unit/cli/test_startup.py).
        import asyncio

        await asyncio.sleep(max(0.0, seconds) / self.speed)


class SystemClock(ScaledClock):
    """The real clock."""

    def __init__(self) -> None:
        super().__init__(1.0)


class ManualClock:
    """A clock that only moves when told to, for unit tests of retry and wait logic.

    ``sleep`` parks the caller until ``advance`` moves time past its deadline; ``auto=True``
    jumps straight to the earliest deadline whenever every task is asleep, so a test of a
    ten-minute backoff schedule finishes at once and can assert on ``now()``.
    """

    def __init__(self, start: float = 0.0, *, auto: bool = True) -> None:
        self._now = start
        self._auto = auto
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self.slept: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        import asyncio

        self.slept.append(seconds)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), fut))
        if self._auto:
            loop.call_soon(self._jump)
        await fut

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._wake()

    def _jump(self) -> None:
        if self._sleepers:
            self._now = max(self._now, self._sleepers[0][0])
            self._wake()

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
