"""Servers created together start together; one that does not is left behind.

Hetzner creates and starts a server in well under a minute; one stuck in "starting" (#16:
it happens, and only Hetzner can end it) held every later phase of ``create`` until its
action wait timed out after ``Timing.action_timeout`` (15 minutes), configuring no node in
the meantime. A create still starting once at least half of those submitted with it are
running, after ``STRAGGLER_FACTOR`` times the slowest of them and never before
``Timing.straggler_after``, is a straggler: its wait ends there and ``create`` goes on
with the servers that are running (the servers component leaves it out, names it, and a
re-run finishes it). One lone create, or creates that are all slow together, wait out the
full action timeout as before: there is no one to go on with, or no one is slower.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from hk8s.errors import WaitTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from hk8s.model.clock import Clock
    from hk8s.model.timing import Timing

__all__ = ["STRAGGLER_FACTOR", "StartGate"]

STRAGGLER_FACTOR = 3.0
T = TypeVar("T")


class StartGate:
    """Runs server creates and ends the wait of one that fell far behind the others."""

    def __init__(self, clock: Clock, timing: Timing) -> None:
        self.clock = clock
        self.timing = timing
        self._started = 0
        self._ended = 0  # creates that finished or failed
        self._finished: list[float] = []  # seconds each successful create took

    def patience(self) -> float | None:
        """How long a create may take now before it counts as a straggler: None while
        fewer than half of the creates finished (nothing to compare with yet)."""
        if not self._finished or 2 * self._ended < self._started:
            return None
        return max(self.timing.straggler_after, STRAGGLER_FACTOR * max(self._finished))

    async def run(self, name: str, create: Awaitable[T]) -> T:
        """``create``'s result; WaitTimeoutError once it is a straggler (the create itself
        goes on at Hetzner: only this run stops waiting for it)."""
        self._started += 1
        start = self.clock.now()
        task = asyncio.ensure_future(create)
        watch = asyncio.ensure_future(self._watch(start))
        try:
            done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if task in done:
            self._ended += 1
            result = task.result()  # a failed create raises here, and sets no baseline
            self._finished.append(self.clock.now() - start)
            return result
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        waited = self.clock.now() - start
        raise WaitTimeoutError(
            f"server {name} to be created and running, while the others took at most "
            f"{max(self._finished):.0f}s",
            waited,
        )

    async def _watch(self, start: float) -> None:
        """Returns once the create begun at ``start`` is a straggler."""
        while True:
            patience = self.patience()
            if patience is not None and self.clock.now() - start >= patience:
                return
            await self.clock.sleep(self.timing.action_poll_max)
