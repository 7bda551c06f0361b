"""Waiting for Hetzner actions in batches, shared by every concurrent caller.

Each mutating call returns actions; rather than one poller per action (30 servers = 30 GETs per
interval), every waiter registers its ids with one ``ActionWaiter``, which polls all pending
ids together: ``GET /actions?id=1&id=2...`` with at most 25 ids per request (design.md
section 4). The next poll is due when the soonest waiter can be released: when the last of
its actions should finish, going by the ``progress`` Hetzner reports and how long each has run
(a server create at 5% after 1 s is polled again about 18 s later, not 5 times on the way; a
server's create and start actions are one wait, so the create finishing alone is no reason to
poll), stretched to take in the waiters due within ``action_poll_initial`` after it (servers
created a moment apart finish a moment apart: one poll for all, not one each; #17 counted six
polls for a 3+3 create's six servers). Without progress, polls back off from
``action_poll_initial`` to ``action_poll_max`` and start over when new ids arrive. Either way
the interval stays within those two bounds; a new id cuts a longer pause short. A finished
action resolves its waiters; a failed one raises ``ActionFailedError`` with the action's
error; ``action_timeout`` bounds the wait.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hk8s.errors import WaitTimeoutError
from hk8s.model.progress import note
from hk8s.providers.hcloud._errors import action_failed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from hk8s.model.clock import Clock
    from hk8s.model.resources import Action
    from hk8s.model.timing import Timing

__all__ = ["BATCH_SIZE", "ActionWaiter"]

BATCH_SIZE = 25


class ActionWaiter:
    """Coalesces action waits into batched polls. One per provider (and event loop)."""

    def __init__(
        self,
        fetch: Callable[[list[int]], Awaitable[list[Action]]],
        clock: Clock,
        timing: Timing,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._timing = timing
        self._pending: dict[int, tuple[asyncio.Future[Action], float]] = {}
        self._groups: list[frozenset[int]] = []  # the running ids of each wait() in progress
        self._poller: asyncio.Task[None] | None = None
        self._fresh = False
        self._arrived: asyncio.Event | None = None  # new ids while the poller sleeps
        self.polls = 0  # batch requests made, for tests

    async def wait(self, actions: Sequence[Action]) -> list[Action]:
        """Wait until every action finished; ``actions`` may already be finished."""
        loop = asyncio.get_running_loop()
        if self._poller is not None and self._poller.get_loop() is not loop:
            # The provider outlived an event loop (asyncio.run called twice): start afresh.
            self._pending.clear()
            self._groups.clear()
            self._poller = None
        futures: list[asyncio.Future[Action]] = []
        for action in actions:
            if action.status == "error":
                raise action_failed(action)
            if action.status != "running":
                done: asyncio.Future[Action] = loop.create_future()
                done.set_result(action)
                futures.append(done)
                continue
            entry = self._pending.get(action.id)
            if entry is None:
                entry = (loop.create_future(), self._clock.now())
                self._pending[action.id] = entry
                self._fresh = True
                if self._arrived is not None:
                    self._arrived.set()
            futures.append(entry[0])
        running = [a for a in actions if a.status == "running"]
        if running:
            what = ", ".join(f"{a.id}" + (f" ({a.command})" if a.command else "") for a in running)
            note(f"Hetzner action {what}")
        if self._pending and (self._poller is None or self._poller.done()):
            self._poller = loop.create_task(self._poll())
        group = frozenset(a.id for a in running)
        self._groups.append(group)
        try:
            return list(await asyncio.gather(*futures))
        finally:
            if group in self._groups:  # not when a new event loop started afresh
                self._groups.remove(group)

    async def _poll(self) -> None:
        interval = self._timing.action_poll_initial
        pause = interval
        self._arrived = asyncio.Event()
        while self._pending:
            await self._nap(pause)
            if self._fresh:
                interval = self._timing.action_poll_initial
                self._fresh = False
            ids = sorted(self._pending)
            etas: dict[int, float] = {}
            for start in range(0, len(ids), BATCH_SIZE):
                chunk = ids[start : start + BATCH_SIZE]
                self.polls += 1
                try:
                    found = await self._fetch(chunk)
                except Exception as exc:
                    self._fail(chunk, exc)
                    continue
                for action in found:
                    eta = self._eta(action)
                    if eta is not None:
                        etas[action.id] = eta
                    self._settle(action)
            self._expire()
            interval = min(interval * 1.5, self._timing.action_poll_max)
            pause = interval
            due = self._due(etas)
            if due is not None:
                low, high = self._timing.action_poll_initial, self._timing.action_poll_max
                pause = min(max(due, low), high)

    async def _nap(self, pause: float) -> None:
        """Sleep ``pause``, but no longer than ``action_poll_initial`` after a new id arrives
        (a short action registered during a long server create is not left for 10 s)."""
        assert self._arrived is not None
        deadline = self._clock.now() + pause
        while (remaining := deadline - self._clock.now()) > 0:
            self._arrived.clear()
            sleep = asyncio.ensure_future(self._clock.sleep(remaining))
            arrival = asyncio.ensure_future(self._arrived.wait())
            try:
                await asyncio.wait((sleep, arrival), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleep, arrival):
                    task.cancel()
                await asyncio.gather(sleep, arrival, return_exceptions=True)
            if arrival.done() and not arrival.cancelled():
                deadline = min(deadline, self._clock.now() + self._timing.action_poll_initial)

    def _due(self, etas: dict[int, float]) -> float | None:
        """Seconds until the next poll that releases a waiter (see the module docstring):
        per waiter the latest ETA of its pending actions (a lower bound when some have none),
        the soonest of those, stretched over waiters due within ``action_poll_initial``."""
        dues = []
        for group in self._groups:
            known = [etas[i] for i in group if i in self._pending and i in etas]
            if known:
                dues.append(max(known))
        if not dues:
            return None
        first = min(dues)
        return max(d for d in dues if d <= first + self._timing.action_poll_initial)

    def _eta(self, action: Action) -> float | None:
        """Seconds until a running action should finish, from its progress so far."""
        entry = self._pending.get(action.id)
        if entry is None or action.status != "running" or not 0 < action.progress < 100:
            return None
        elapsed = self._clock.now() - entry[1]
        return elapsed * (100 - action.progress) / action.progress

    def _settle(self, action: Action) -> None:
        if action.status == "running" or action.id not in self._pending:
            return
        future, _ = self._pending.pop(action.id)
        if future.done():
            return
        if action.status == "error":
            future.set_exception(action_failed(action))
        else:
            future.set_result(action)

    def _fail(self, ids: list[int], exc: Exception) -> None:
        for action_id in ids:
            future, _ = self._pending.pop(action_id)
            if not future.done():
                future.set_exception(exc)

    def _expire(self) -> None:
        now = self._clock.now()
        timeout = self._timing.action_timeout
        for action_id, (future, since) in list(self._pending.items()):
            if now - since >= timeout:
                del self._pending[action_id]
                if not future.done():
                    future.set_exception(WaitTimeoutError(f"Hetzner action {action_id}", timeout))
