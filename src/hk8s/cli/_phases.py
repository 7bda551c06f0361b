"""The state behind every progress view: steps grouped by phase, with counts and durations.

The controller reports steps (``hk8s.controller.ProgressEvent``), each in a phase. A
``PhaseBoard`` folds them into what a person wants at 100 nodes: per phase how many steps are
done out of how many (``servers 37/100``), when it started and how long it took, which steps
have been waiting longest right now and on what, and the warnings and failures. The live view,
the plain log lines and the JSON lines all read the same board, so they agree.

A phase is finished once all its steps are and a later phase has started (or the run ended):
the same key can run several conditions in a row (``Talos API of x to answer``, then ``apply
machine config to x``), and the moment between two of them is not the end of the phase. A
``done`` whose title is not the step's planned title ends such a sub-condition, not the step.
Times come from the run's clock (``hk8s.model.Clock``), never from ``time`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from hk8s.controller import ProgressEvent
    from hk8s.model import Clock

__all__ = ["PhaseBoard", "PhaseState", "Step", "Transition", "clock_text"]

StepState = Literal["planned", "running", "done", "failed", "skipped"]
_TERMINAL = ("done", "failed", "skipped")
_ENDS: dict[str, StepState] = {"done": "done", "failed": "failed", "skipped": "skipped"}


def clock_text(seconds: float) -> str:
    """``0:07``, ``12:03``, ``1:02:03``: durations as a person reads them."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Step:
    """One step (an event key) within a phase."""

    key: str
    phase: str
    title: str
    planned_title: str | None = None
    state: StepState = "planned"
    activity: str = ""  # the condition it waits on / the action it runs now
    detail: str | None = None
    started: float | None = None
    since: float | None = None  # when the current activity began
    ended: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in _TERMINAL

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    @property
    def subject(self) -> str:
        """What the step acts on: ``demo-workers-7`` for ``node/demo-workers-7``."""
        return self.key.split("/", 1)[-1]


@dataclass
class PhaseState:
    name: str
    order: int
    steps: dict[str, Step] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def completed(self) -> int:
        return sum(1 for s in self.steps.values() if s.terminal)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.steps.values() if s.state in ("failed", "skipped"))

    @property
    def finished(self) -> bool:
        return self.ended is not None

    @property
    def all_terminal(self) -> bool:
        return all(s.terminal for s in self.steps.values())

    def duration(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else now) - self.started

    def counts(self) -> str:
        return f"{self.completed}/{self.total}"


@dataclass(frozen=True)
class Transition:
    kind: Literal["started", "finished"]
    phase: PhaseState


class PhaseBoard:
    """Folds progress events into phases; ``record`` says which phases started or finished."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start = clock.now()
        self.phases: dict[str, PhaseState] = {}
        self.warnings: list[str] = []
        self.failures: list[Step] = []

    def now(self) -> float:
        return self.clock.now()

    def elapsed(self) -> float:
        return self.now() - self.start

    def record(self, event: ProgressEvent) -> tuple[Step | None, list[Transition]]:
        """Apply ``event``; the step it touched and the phase transitions it caused."""
        if event.kind == "warning":
            self.warnings.append(event.detail or event.title)
            return None, []
        if event.kind == "info" or not event.key:
            return None, []
        now = self.now()
        phase = self.phases.get(event.phase)
        if phase is None:
            phase = self.phases[event.phase] = PhaseState(event.phase, len(self.phases))
        step = phase.steps.get(event.key)
        if step is None:
            step = phase.steps[event.key] = Step(event.key, event.phase, event.title)
        moves: list[Transition] = []
        if event.kind == "planned":
            step.planned_title = step.title = event.title
            if step.terminal:
                step.state, step.ended = "planned", None
            if phase.finished:
                phase.ended = None
            return step, moves
        if event.kind in ("started", "waiting"):
            if step.state != "running":
                step.state, step.ended, step.since = "running", None, now
                step.started = now if step.started is None else step.started
            if event.kind == "started":
                step.title = event.title
            if event.title != step.activity:
                step.activity, step.since = event.title, now
            step.detail = event.detail
            moves += self._finish_earlier(phase)
            if phase.started is None or phase.finished:
                phase.started = now if phase.started is None else phase.started
                phase.ended = None
                moves.append(Transition("started", phase))
            return step, moves
        # done, failed, skipped
        sub_condition = (
            event.kind == "done"
            and step.planned_title is not None
            and event.title != step.planned_title
        )
        if sub_condition:
            step.activity, step.detail, step.since = "", None, now
            return step, moves
        step.state = _ENDS[event.kind]
        step.ended, step.detail = now, event.detail
        step.started = now if step.started is None else step.started
        if event.kind == "failed":
            step.activity = event.title
            self.failures.append(step)
        if phase.started is None:
            phase.started = now
            moves.append(Transition("started", phase))
        later_started = any(
            p.order > phase.order and p.started is not None for p in self.phases.values()
        )
        if later_started and phase.all_terminal and not phase.finished:
            phase.ended = now
            moves.append(Transition("finished", phase))
        return step, moves

    def _finish_earlier(self, current: PhaseState) -> list[Transition]:
        moves = []
        for phase in self.phases.values():
            if (
                phase.order < current.order
                and phase.started is not None
                and not phase.finished
                and phase.all_terminal
            ):
                ends = [s.ended for s in phase.steps.values() if s.ended is not None]
                phase.ended = max(ends, default=self.now())
                moves.append(Transition("finished", phase))
        return moves

    def close(self) -> list[Transition]:
        """The run ended: every phase that started is finished now (interrupted or not)."""
        moves = []
        now = self.now()
        for phase in self.ordered():
            if phase.started is not None and not phase.finished:
                ends = [s.ended for s in phase.steps.values() if s.ended is not None]
                phase.ended = max(ends, default=now) if phase.all_terminal else now
                moves.append(Transition("finished", phase))
        return moves

    def ordered(self) -> list[PhaseState]:
        return sorted(self.phases.values(), key=lambda p: p.order)

    def running(self) -> list[Step]:
        """Steps running now, the longest-waiting first."""
        steps = [s for p in self.phases.values() for s in p.steps.values() if s.state == "running"]
        return sorted(steps, key=lambda s: (s.since if s.since is not None else 0.0, s.key))

    def summary(self) -> list[dict[str, object]]:
        """Per phase that ran: its name, duration (s), steps done/total and failures."""
        now = self.now()
        return [
            {
                "phase": p.name,
                "duration": round(p.duration(now), 1),
                "done": p.completed,
                "total": p.total,
                "failed": p.failed,
            }
            for p in self.ordered()
            if p.started is not None
        ]

    def summary_lines(self) -> list[str]:
        """The text summary: one line per phase, then the run's total."""
        rows = [p for p in self.ordered() if p.started is not None]
        if not rows:
            return []
        now = self.now()
        width = max(len(p.name) for p in rows)
        lines = [f"phase durations (run {clock_text(self.elapsed())}):"]
        for phase in rows:
            mark = "✗" if phase.failed else "✓" if phase.all_terminal else "…"
            failed = f"  ({phase.failed} failed)" if phase.failed else ""
            lines.append(
                f"  {mark} {phase.name.ljust(width)}  {phase.counts():>7}  "
                f"{clock_text(phase.duration(now)):>7}{failed}"
            )
        return lines
