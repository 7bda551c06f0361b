"""Servers created together start together; one that does not is left behind.

Hetzner creates and starts a server in well under a minute; one stuck in "starting" (#16:
it happens, and only Hetzner can end it) held every later phase of ``create`` until its
action wait timed out after ``Timing.action_timeout`` (15 minutes), configuring no node in
the meantime. A wait still pending once at least half of those begun with it are done,
after ``STRAGGLER_FACTOR`` times the slowest of them and never before
``Timing.straggler_after``, is a straggler's: it ends there and ``create`` goes on with the
servers that are running (it leaves the straggler out, names it, and a re-run finishes it).
A lone wait, or waits that are all slow together, run to their own timeout as before: there
is no one to go on with, or no one is slower.

Only Hetzner's start is judged so: a node slow to answer on the Talos API holds nothing
(the etcd bootstrap starts on the first control plane configured, the others join as they
answer), and boot times vary too much for leaving one out early to be worth a failed run.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from hk8s.errors import WaitTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from hk8s.model.clock import Clock
    from hk8s.model.timing import Timing

__all__ = ["STRAGGLER_FACTOR", "Stragglers"]

STRAGGLER_FACTOR = 3.0
T = TypeVar("T")


class Stragglers:
    """Runs waits begun together and ends one that fell far behind the others."""

    def __init__(self, clock: Clock, timing: Timing) -> None:
        self.clock = clock
        self.timing = timing
        self._started = 0
        self._ended = 0  # waits that finished or failed
        self._finished: list[float] = []  # seconds each successful wait took

    def patience(self) -> float | None:
        """How long a wait may take now before it counts as a straggler's: None while
        fewer than half of the waits ended (nothing to compare with yet)."""
        if not self._finished or 2 * self._ended < self._started:
            return None
        return max(self.timing.straggler_after, STRAGGLER_FACTOR * max(self._finished))

    async def run(self, condition: str, wait: Awaitable[T]) -> T:
        """``wait``'s result; WaitTimeoutError naming ``condition`` ("server x to be created
        and running") once it is a straggler's (cancelled: what it waits for goes on at
        Hetzner or on the node, only this run stops waiting for it)."""
        self._started += 1
        start = self.clock.now()
        task = asyncio.ensure_future(wait)
        watch = asyncio.ensure_future(self._watch(start))
        try:
            done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if task in done:
            self._ended += 1
            result = task.result()  # a failed wait raises here, and sets no baseline
            self._finished.append(self.clock.now() - start)
            return result
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        waited = self.clock.now() - start
        raise WaitTimeoutError(
            f"{condition}, while the others took at most {max(self._finished):.0f}s",
            waited,
        )

    async def _watch(self, start: float) -> None:
        """Returns once the wait begun at ``start`` is a straggler's."""
        while True:
            patience = self.patience()
            if patience is not None and self.clock.now() - start >= patience:
                return
            await self.clock.sleep(self.timing.action_poll_max)
