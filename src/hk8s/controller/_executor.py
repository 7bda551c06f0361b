"""Run a plan: independent operations concurrently, dependent ones in order.

Each operation runs as soon as everything it depends on has succeeded. There is no slot count
by default: the Hetzner provider paces requests with its shared rate limiter and bounds the
requests in flight (its worker threads), and a handler waiting for an action (a server being
created, 20-90 s on real Hetzner) holds neither: its action joins the provider's batched
``GET /actions?id=..`` polls. A fixed number of slots held for an action's duration made 100
servers come up in waves. ``concurrency`` still caps handlers where a caller needs it
(tests, one-at-a-time debugging). A failure does not
stop independent work: the failed step's dependents are skipped, the rest runs to the end, and
every error is reported together, as cluster-api's reconcilers aggregate per-phase errors.

Handlers do the work per resource kind. They must be idempotent (a re-run after an
interruption repeats whatever had not finished), which ``hk8s.controller.infra._apply`` shows.

>>> async def create_network(op, results):
...     return f"created {op.name}"
>>> executor = Executor({"network": create_network})
>>> # results = await executor.run(plan)   # {"network/demo": "created demo"}
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Protocol

from hk8s.controller._report import PHASES, EventKind, NullReporter, ProgressEvent, Reporter
from hk8s.errors import OperationsFailedError
from hk8s.model.progress import noting

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hk8s.controller._plan import Operation, Plan

__all__ = ["Executor", "Handler", "LeftOut", "Results"]


class LeftOut(Exception):
    """Raised by a handler whose step did not finish but must not fail the phase: a server
    Hetzner never starts is left out, the rest of the cluster converges, and the caller
    names it at the end (``Results.left_out``). Dependents are skipped as after a failure.
    """


class Results(dict[str, object]):
    """What each finished operation returned, by operation key (``network/demo``).

    Handlers of dependent operations read their dependencies' results here, e.g. the id of a
    network created a moment ago.
    """

    def __init__(self) -> None:
        super().__init__()
        # Steps a handler left out (``LeftOut``): operation key -> why.
        self.left_out: dict[str, str] = {}

    def of(self, kind: str, name: str) -> object:
        return self.get(f"{kind}/{name}")


class Handler(Protocol):
    async def __call__(self, op: Operation, results: Results) -> object: ...


class Executor:
    """Runs plans against per-kind handlers and reports each step."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        reporter: Reporter | None = None,
        *,
        concurrency: int | None = None,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._handlers = dict(handlers)
        self._reporter = reporter or NullReporter()
        self._concurrency = concurrency

    async def run(self, plan: Plan, *, phase: str = "apply") -> Results:
        """Execute ``plan``; return each operation's result.

        Raises the error itself when exactly one operation failed, and
        ``OperationsFailedError`` (holding every error) when several did. Every operation is
        first reported as ``planned``, so a progress view knows how many steps to expect;
        when ``phase`` is one of ``PHASES`` (``scale down``) every step is reported in it,
        otherwise in the phase its key implies (``server/...`` in ``servers``).
        """
        missing = sorted({op.kind for op in plan.operations} - set(self._handlers))
        if missing:
            raise ValueError(f"no handler for kind(s) {', '.join(missing)}")
        results = Results()
        errors: list[BaseException] = []
        keys = {op.key for op in plan.operations}
        finished = {op.key: asyncio.Event() for op in plan.operations}
        succeeded: set[str] = set()
        limit: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Semaphore(self._concurrency)
            if self._concurrency is not None
            else contextlib.nullcontext()
        )
        stamp = phase if phase in PHASES else ""
        for op in plan.operations:
            self._emit("planned", op, phase=stamp)

        async def run_one(op: Operation) -> None:
            try:
                deps = [d for d in op.depends_on if d in keys]
                for dep in deps:
                    await finished[dep].wait()
                blocked = [d for d in deps if d not in succeeded]
                if blocked:
                    self._emit(
                        "skipped", op, f"depends on {', '.join(blocked)}, which failed", stamp
                    )
                    return
                async with limit:
                    self._emit("started", op, phase=stamp)

                    def waits_on(detail: str, op: Operation = op) -> None:
                        self._emit("waiting", op, detail, stamp)

                    try:
                        with noting(waits_on):
                            results[op.key] = await self._handlers[op.kind](op, results)
                    except LeftOut as exc:
                        results.left_out[op.key] = str(exc)
                        self._emit("failed", op, str(exc), stamp)
                        return
                    except Exception as exc:
                        errors.append(exc)
                        self._emit("failed", op, str(exc), stamp)
                        return
                succeeded.add(op.key)
                self._emit("done", op, phase=stamp)
            finally:
                finished[op.key].set()

        async with asyncio.TaskGroup() as group:
            for op in plan.operations:
                group.create_task(run_one(op))

        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise OperationsFailedError(phase, errors)
        return results

    def _emit(
        self, kind: EventKind, op: Operation, detail: str | None = None, phase: str = ""
    ) -> None:
        title = f"{op.type} {op.kind} {op.name}"
        self._reporter.emit(ProgressEvent(kind, op.key, title, detail, phase))
