"""Observe -> diff -> plan -> apply, over pluggable components.

A ``Component`` owns one slice of what hk8s manages (infra now; servers, configs and addons
plug in the same way): it observes its slice by label, diffs it into operations, and offers
handlers for the kinds it plans. ``Reconciler`` runs every component's observation
concurrently, merges the operations into one ``Plan`` ordered by the kind rules, and executes
it. ``hk8s plan`` stops after ``plan()``; ``hk8s infra``/``create`` go on to ``apply()``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from hk8s.controller._executor import Executor, Results
from hk8s.controller._order import build_plan
from hk8s.controller._report import NullReporter, Reporter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller._executor import Handler
    from hk8s.controller._plan import Operation, Plan

__all__ = ["Component", "Reconciler"]


class Component(Protocol):
    """One slice of the cluster. ``observe`` runs before ``diff``/``handlers``."""

    async def observe(self) -> None: ...

    def diff(self) -> list[Operation]: ...

    def handlers(self, reporter: Reporter) -> dict[str, Handler]: ...

    def warnings(self) -> list[str]:
        """Things the operator should know whatever the plan (e.g. firewall coverage)."""
        ...


class Reconciler:
    def __init__(
        self,
        components: Sequence[Component],
        reporter: Reporter | None = None,
        *,
        concurrency: int | None = None,
    ) -> None:
        self.components = list(components)
        self.reporter = reporter or NullReporter()
        self._concurrency = concurrency

    async def plan(self) -> Plan:
        """Observe every component (concurrently) and diff: the plan, touching nothing."""
        await asyncio.gather(*(c.observe() for c in self.components))
        ops = [op for c in self.components for op in c.diff()]
        return build_plan(ops)

    def warnings(self) -> list[str]:
        return [w for c in self.components for w in c.warnings()]

    async def apply(self, plan: Plan, *, phase: str = "apply") -> Results:
        handlers: dict[str, Handler] = {}
        for component in self.components:
            handlers.update(component.handlers(self.reporter))
        executor = Executor(handlers, self.reporter, concurrency=self._concurrency)
        return await executor.run(plan, phase=phase)

    async def reconcile(self) -> tuple[Plan, Results]:
        plan = await self.plan()
        return plan, await self.apply(plan)
