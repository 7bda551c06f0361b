"""Named conditions: poll a check through the clock, report what is pending, give up in time.

After talos' ``pkg/cluster/check``: each condition has a name the operator reads (``etcd has
3 members``), a check that says whether it holds and what it saw, and a deadline. Retryable
errors (a node still booting) count as "not yet"; permanent ones end the wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from hk8s.controller._report import NullReporter, ProgressEvent, Reporter
from hk8s.errors import Hk8sError, WaitTimeoutError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from hk8s.model import Clock, Timing
    from hk8s.providers.k8s import KubernetesAPI

_A = TypeVar("_A")
_B = TypeVar("_B")

__all__ = ["Waiter", "together", "wait_nodes_ready"]


@dataclass
class Waiter:
    """Waits on named conditions with one clock, timing and reporter.

    ``phase`` puts every event in that phase instead of the one its key implies
    (``waiter.within("etcd")`` for the bootstrap steps on a node's key).
    """

    clock: Clock
    timing: Timing
    reporter: Reporter = NullReporter()  # noqa: RUF009 - stateless default
    phase: str = ""

    def within(self, phase: str) -> Waiter:
        """The same waiter reporting in ``phase``."""
        return dataclasses.replace(self, phase=phase)

    async def until(
        self,
        key: str,
        condition: str,
        check: Callable[[], Awaitable[tuple[bool, str]]],  # -> (holds, what was seen)
        *,
        timeout: float | None = None,
        interval: float | None = None,
    ) -> None:
        """Poll ``check`` until it holds; ``WaitTimeoutError`` naming ``condition`` if not."""
        limit = self.timing.cluster_timeout if timeout is None else timeout
        pause = self.timing.node_poll_interval if interval is None else interval
        deadline = self.clock.now() + limit
        last = ""
        reported = False
        while True:
            try:
                done, seen = await check()
            except Hk8sError as exc:
                if not exc.retryable:
                    self.reporter.emit(
                        ProgressEvent("failed", key, condition, str(exc), self.phase)
                    )
                    raise
                done, seen = False, str(exc)
            if done:
                # Also when it held at once: the condition was checked, and its phase ran.
                self.reporter.emit(ProgressEvent("done", key, condition, phase=self.phase))
                return
            if seen != last or not reported:
                self.reporter.emit(
                    ProgressEvent("waiting", key, condition, seen or None, self.phase)
                )
                reported = True
            last = seen
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                error = WaitTimeoutError(condition, limit, last_error=last or None)
                self.reporter.emit(ProgressEvent("failed", key, condition, str(error), self.phase))
                raise error
            await self.clock.sleep(min(pause, remaining))

    def info(self, key: str, title: str, detail: str | None = None) -> None:
        self.reporter.emit(ProgressEvent("info", key, title, detail, self.phase))

    def plan(self, key: str, title: str) -> None:
        """Announce a step that will run later (it counts in its phase's total)."""
        self.reporter.emit(ProgressEvent("planned", key, title, phase=self.phase))

    def step(self, key: str, title: str) -> None:
        self.reporter.emit(ProgressEvent("started", key, title, phase=self.phase))

    def done(self, key: str, title: str, detail: str | None = None) -> None:
        self.reporter.emit(ProgressEvent("done", key, title, detail, self.phase))


async def together(first: Awaitable[_A], second: Awaitable[_B]) -> tuple[_A, _B]:
    """Run both to the end and return both results; the first failure cancels the other and
    is raised (a pipeline whose other half failed has nothing left to wait for)."""
    tasks = (asyncio.ensure_future(first), asyncio.ensure_future(second))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return tasks[0].result(), tasks[1].result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_nodes_ready(kube: KubernetesAPI, waiter: Waiter, names: Sequence[str]) -> None:
    """Every named node Ready, each counted in the "nodes Ready" phase as it gets there
    (``nodes Ready 37/100``), so a person sees how far along a large create is and which
    nodes it still waits for. ``kube.wait_nodes_ready`` stays the authority on the outcome
    (its timeout and retries); the count beside it reads the node list at the poll interval.
    """
    titles = {name: f"{name} Ready" for name in names}
    for name, title in titles.items():
        waiter.plan(f"nodes/{name}", title)
        waiter.step(f"nodes/{name}", title)
    pending = set(names)

    def mark(ready: set[str]) -> None:
        for name in sorted(pending & ready):
            pending.discard(name)
            waiter.done(f"nodes/{name}", titles[name])

    async def count() -> None:
        while pending:
            with contextlib.suppress(Hk8sError):  # a failed read is the wait's to judge
                mark({n.name for n in await kube.list_nodes(retry=False) if n.ready})
            await waiter.clock.sleep(waiter.timing.cluster_poll_interval)

    counter = asyncio.ensure_future(count())
    try:
        await kube.wait_nodes_ready(names)
    except Hk8sError as exc:
        for name in sorted(pending):
            waiter.reporter.emit(
                ProgressEvent("failed", f"nodes/{name}", titles[name], exc.message, waiter.phase)
            )
        raise
    finally:
        counter.cancel()
        await asyncio.gather(counter, return_exceptions=True)
    mark(set(pending))
