"""The live view on a terminal: one line per phase, the steps waiting longest, never too tall.

::

    ✓ snapshots        ━━━━━━━━━━━━━━━━━━━━   1/1    in 0:45
    ✓ infrastructure   ━━━━━━━━━━━━━━━━━━━━   6/6    in 0:03
    ▸ servers          ━━━━━━━━╺━━━━━━━━━━━  37/100     1:02
    · machine configs  ━━━━━━━━━━━━━━━━━━━━   0/100
    waiting longest
       4:10  demo-workers-50  Talos API of demo-workers-50 to answer: connection refused
    run 3:17

Phases are tasks of a rich ``Progress`` (bar and counts), the waiting steps a rich ``Table``,
refreshed by ``rich.live.Live`` from the board on every tick. The view is cut to the console's
height: finished phases fold into one line, then fewer waiting steps are shown. Warnings and
failures are printed above the live region, where they stay when it moves on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.cli._phases import PhaseBoard, PhaseState, clock_text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import TaskID

    from hk8s.controller import ProgressEvent

__all__ = ["LiveReporter"]

SLOWEST = 5  # waiting steps shown at most


class LiveReporter:
    """Renders a ``PhaseBoard`` with rich; ``view()`` is the frame ``Live`` shows."""

    def __init__(
        self,
        board: PhaseBoard,
        console: Console | None = None,
        *,
        verbose: bool = False,
        start: bool = True,
    ) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.table import Column

        self.board = board
        self.console = console or Console(stderr=True)
        self._verbose = verbose
        self._progress = Progress(
            TextColumn("{task.fields[mark]}"),
            TextColumn("{task.description}", table_column=Column(width=18, no_wrap=True)),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[took]}", table_column=Column(width=9, justify="right")),
            TextColumn("{task.fields[note]}", style="red"),
            console=self.console,
            auto_refresh=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            get_renderable=self.view,
        )
        if start:
            self._live.start()

    # -- events
    def emit(self, event: ProgressEvent) -> None:
        step, _ = self.board.record(event)
        detail = f": {event.detail}" if event.detail else ""
        if event.kind == "warning":
            self.console.print(f"[yellow]![/yellow] {event.detail or event.title}", highlight=False)
        elif event.kind == "failed":
            self.console.print(f"[red]✗[/red] {event.title}{detail}", highlight=False)
        elif self._verbose and event.kind == "done" and step is not None and step.terminal:
            took = f" ({clock_text(step.duration)})" if step.duration is not None else ""
            self.console.print(f"[green]✓[/green] {event.title}{detail}{took}", highlight=False)

    def tick(self) -> None:
        self._live.refresh()

    def close(self) -> None:
        self.board.close()
        self._live.stop()
        for line in self.board.summary_lines():
            self.console.print(line, highlight=False)

    # -- the frame
    def view(self) -> RenderableType:
        """The current frame, at most the console's height (less one line for the cursor)."""
        from rich.console import Group
        from rich.text import Text

        budget = max(1, self.console.size.height - 1)
        now = self.board.now()
        phases = self.board.ordered()
        folded = [p for p in phases if p.finished and not p.failed]
        shown = phases
        lines: list[RenderableType] = []
        # Fold finished phases into one line when all of them and a few waits do not fit.
        if len(phases) + 3 > budget and len(folded) > 1:
            shown = [p for p in phases if p not in folded]
            lines.append(Text(self._folded_text(folded, now), no_wrap=True, overflow="ellipsis"))
        room = budget - 1 - len(lines)  # the footer
        shown = shown[: max(0, room)]
        self._sync(shown, now)
        if shown:
            lines.append(self._progress)
        room -= len(shown)
        slow = self._slowest(room - 1)
        if slow is not None:
            lines += [Text("waiting longest", style="bold"), slow]
        lines.append(Text(self._footer(now), style="dim", no_wrap=True, overflow="ellipsis"))
        return Group(*lines)

    def _folded_text(self, folded: list[PhaseState], now: float) -> str:
        parts = ", ".join(f"{p.name} {clock_text(p.duration(now))}" for p in folded)
        return f"✓ {len(folded)} phases done: {parts}"

    def _sync(self, shown: list[PhaseState], now: float) -> None:
        for name, task in self._tasks.items():
            if all(p.name != name for p in shown):
                self._progress.update(task, visible=False)
        for phase in shown:
            fields: dict[str, Any] = {
                "total": max(1, phase.total),
                "completed": phase.completed,
                "mark": self._mark(phase),
                "took": self._took(phase, now),
                "note": f"{phase.failed} failed" if phase.failed else "",
                "visible": True,
            }
            if phase.name not in self._tasks:
                self._tasks[phase.name] = self._progress.add_task(phase.name, **fields)
            else:
                self._progress.update(self._tasks[phase.name], **fields)

    @staticmethod
    def _mark(phase: PhaseState) -> str:
        if phase.failed:
            return "[red]✗[/red]"
        if phase.finished:
            return "[green]✓[/green]"
        return "[cyan]▸[/cyan]" if phase.started is not None else "[dim]·[/dim]"

    @staticmethod
    def _took(phase: PhaseState, now: float) -> str:
        if phase.started is None:
            return ""
        took = clock_text(phase.duration(now))
        return f"in {took}" if phase.finished else took

    def _slowest(self, rows: int) -> RenderableType | None:
        from rich.table import Table
        from rich.text import Text

        if rows <= 0:
            return None
        running = self.board.running()[: min(SLOWEST, rows)]
        if not running:
            return None
        now = self.board.now()
        subject = min(24, max(len(s.subject) for s in running))
        # rich shrinks every column of a table too wide, times and names first: cut what the
        # step waits for to the room left instead, so the time and the node stay whole.
        room = max(8, self.console.size.width - 7 - subject - 2)
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", no_wrap=True, width=7)
        table.add_column(no_wrap=True, width=subject)
        table.add_column(no_wrap=True)
        for step in running:
            since = step.since if step.since is not None else now
            detail = f": {step.detail}" if step.detail else ""
            what = Text(f"{step.activity or step.title}{detail}")
            what.truncate(room, overflow="ellipsis")
            name = Text(step.subject)
            name.truncate(subject, overflow="ellipsis")
            table.add_row(clock_text(now - since), name, what)
        return table

    def _footer(self, now: float) -> str:
        waiting = len(self.board.running())
        parts = [f"run {clock_text(self.board.elapsed())}", f"{waiting} step(s) running"]
        if self.board.warnings:
            parts.append(f"{len(self.board.warnings)} warning(s) above")
        if self.board.failures:
            parts.append(f"{len(self.board.failures)} failure(s) above")
        return " · ".join(parts)
