"""Rendering the controller's progress events: live view, plain lines, or JSON lines.

- a terminal gets a rich live view of the phases (``hk8s.cli._live``);
- anything else (CI logs, pipes) gets one line per phase transition, failure and warning, and
  a "still waiting for ..." line now and then naming what is pending (``-v``: one per step);
- ``--output json`` gets one JSON object per event, with step and phase durations.

Every reporter ends with the phase durations of the run (a ``summary`` object in JSON), also
when the command failed: that is when a user most wants to know where the minutes went. All of
it goes to stderr: stdout carries only the command's result (see ``_output``). rich is imported
only when the live view is used, so ``hk8s --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from hk8s.cli._phases import PhaseBoard, Step, Transition, clock_text

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hk8s.cli._output import Output
    from hk8s.controller import ProgressEvent
    from hk8s.model import Clock, Timing

__all__ = ["Cadence", "JsonLinesReporter", "PlainReporter", "RunReporter", "progress"]

_MARKS = {
    "started": "...",
    "done": "ok ",
    "failed": "ERR",
    "skipped": "-- ",
    "waiting": "...",
    "warning": "!! ",
    "info": "   ",
}
NAMED = 3  # steps a "still waiting" line names
DETAIL = 100  # characters of what each of them last saw


class RunReporter(Protocol):
    """A reporter with a board, ticked by the clock and closed when the command ends."""

    board: PhaseBoard

    def emit(self, event: ProgressEvent) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class Cadence:
    """When to say "still waiting": after ``interval``, then at doubling gaps up to 16x it."""

    def __init__(self, clock: Clock, interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._gap = interval
        self._next = clock.now() + interval

    def due(self) -> bool:
        now = self._clock.now()
        if now < self._next:
            return False
        self._gap = min(self._gap * 2, self._interval * 16)
        self._next = now + self._gap
        return True


def waited(board: PhaseBoard, step: Step) -> float:
    return board.now() - (step.since if step.since is not None else board.now())


def pending_text(board: PhaseBoard, steps: list[Step]) -> str:
    """``Talos API of x to answer (4:10: refused); create server y (0:30); +12 more``."""
    parts = []
    for step in steps[:NAMED]:
        what = step.activity or step.title
        detail = step.detail or ""
        if len(detail) > DETAIL:  # the whole error is in the step's own failure line
            detail = detail[: DETAIL - 1] + "…"
        detail = f": {detail}" if detail else ""
        parts.append(f"{what} ({clock_text(waited(board, step))}{detail})")
    if len(steps) > NAMED:
        parts.append(f"+{len(steps) - NAMED} more")
    return "; ".join(parts)


class JsonLinesReporter:
    """One JSON object per event; done steps carry ``duration``, phases their own events."""

    def __init__(
        self, board: PhaseBoard, stream: TextIO | None = None, *, interval: float = 30.0
    ) -> None:
        self.board = board
        self._stream = stream or sys.stderr
        self._cadence = Cadence(board.clock, interval)

    def _write(self, data: dict[str, Any]) -> None:
        data = {"time": round(time.time(), 3), "elapsed": round(self.board.elapsed(), 1), **data}
        self._stream.write(json.dumps(data) + "\n")
        self._stream.flush()

    def emit(self, event: ProgressEvent) -> None:
        step, moves = self.board.record(event)
        data: dict[str, Any] = event.to_dict()
        if step is not None and step.terminal and step.duration is not None:
            data["duration"] = round(step.duration, 1)
        self._write(data)
        self._transitions(moves)

    def _transitions(self, moves: list[Transition]) -> None:
        for move in moves:
            phase = move.phase
            data: dict[str, Any] = {"event": "phase", "phase": phase.name, "state": move.kind}
            data |= {"done": phase.completed, "total": phase.total}
            if move.kind == "finished":
                data["duration"] = round(phase.duration(self.board.now()), 1)
                data["failed"] = phase.failed
            self._write(data)

    def tick(self) -> None:
        running = self.board.running()
        if running and self._cadence.due():
            pending = [
                {"key": s.key, "phase": s.phase, "waiting_for": s.activity or s.title,
                 "detail": s.detail, "waited": round(waited(self.board, s), 1)}
                for s in running
            ]  # fmt: skip
            self._write({"event": "still-waiting", "pending": pending})

    def close(self) -> None:
        self._transitions(self.board.close())
        self._write({"event": "summary", "phases": self.board.summary()})


class PlainReporter:
    """Lines for logs: phase transitions, failures, warnings and "still waiting" lines.

    ``verbose`` adds a line per step (start, wait and end, with its duration).
    """

    def __init__(
        self,
        board: PhaseBoard,
        stream: TextIO | None = None,
        *,
        verbose: bool = False,
        interval: float = 30.0,
    ) -> None:
        self.board = board
        self._stream = stream or sys.stderr
        self._verbose = verbose
        self._cadence = Cadence(board.clock, interval)

    def _line(self, text: str) -> None:
        self._stream.write(f"[{clock_text(self.board.elapsed())}] {text}\n")
        self._stream.flush()

    def emit(self, event: ProgressEvent) -> None:
        step, moves = self.board.record(event)
        detail = f": {event.detail}" if event.detail else ""
        if event.kind == "warning":
            self._line(f"!!  warning: {event.detail or event.title}")
        elif event.kind == "failed":
            self._line(f"ERR {event.title}{detail}")
        elif self._verbose and event.kind != "planned":
            took = ""
            if step is not None and step.terminal and step.duration is not None:
                took = f" ({clock_text(step.duration)})"
            self._line(f"{_MARKS[event.kind]} {event.title}{detail}{took}")
        self._transitions(moves)

    def _transitions(self, moves: list[Transition]) -> None:
        for move in moves:
            phase = move.phase
            if move.kind == "started":
                self._line(f">>  {phase.name}: {phase.total} step(s)")
                continue
            took = clock_text(phase.duration(self.board.now()))
            if phase.failed:
                self._line(f"ERR {phase.name}: {phase.failed} of {phase.total} failed ({took})")
            elif not phase.all_terminal:
                self._line(f"ERR {phase.name}: stopped at {phase.counts()} ({took})")
            else:
                self._line(f"ok  {phase.name} {phase.counts()} in {took}")

    def tick(self) -> None:
        running = self.board.running()
        if running and self._cadence.due():
            counts = ", ".join(
                f"{p.name} {p.counts()}"
                for p in self.board.ordered()
                if p.started is not None and not p.finished
            )
            self._line(f"... still waiting for {pending_text(self.board, running)} [{counts}]")

    def close(self) -> None:
        self._transitions(self.board.close())
        for line in self.board.summary_lines():
            self._stream.write(line + "\n")
        self._stream.flush()


async def _tick_forever(reporter: RunReporter, clock: Clock, period: float) -> None:
    while True:
        await clock.sleep(period)
        reporter.tick()


@contextlib.contextmanager
def ticking(reporter: RunReporter, clock: Clock, period: float) -> Iterator[None]:
    """Tick ``reporter`` every ``period`` clock seconds while the block runs (in a loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        yield  # no event loop: nothing waits, so nothing to tick
        return
    task = loop.create_task(_tick_forever(reporter, clock, period))
    try:
        yield
    finally:
        task.cancel()


@contextlib.contextmanager
def progress(
    out: Output, clock: Clock | None = None, timing: Timing | None = None
) -> Iterator[RunReporter]:
    """The reporter for this run: JSON lines, a live view on a terminal, or plain lines."""
    from hk8s.model import SystemClock, Timing

    clock = clock or SystemClock()
    timing = timing or Timing.from_env()
    board = PhaseBoard(clock)
    interval = timing.progress_interval
    reporter: RunReporter
    period = min(0.25, interval / 4)  # logs: often enough to notice their next line
    if out.json:
        reporter = JsonLinesReporter(board, interval=interval)
    elif sys.stderr.isatty() and not out.debug:
        from hk8s.cli._live import LiveReporter

        reporter = LiveReporter(board, verbose=bool(out.verbose))
        period = 0.25  # redraw 4 times a second
    else:
        reporter = PlainReporter(board, verbose=bool(out.verbose), interval=interval)
    try:
        with ticking(reporter, clock, period):
            yield reporter
    finally:
        reporter.close()
        out.phases = board.summary()
