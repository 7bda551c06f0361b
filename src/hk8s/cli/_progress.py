"""Rendering the controller's progress events: live view, plain lines, or JSON lines.

- a terminal gets a rich live view of the steps running now, with finished steps printed
  above it;
- anything else (CI logs, pipes) gets one plain line per event;
- ``--output json`` gets one JSON object per event (``{"event": "done", "key": ...}``).

All of it goes to stderr: stdout carries only the command's result (see ``_output``). rich is
imported only when the live view is used, so ``hk8s --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator

    from hk8s.cli._output import Output
    from hk8s.controller import ProgressEvent, Reporter

__all__ = ["JsonLinesReporter", "LiveReporter", "PlainReporter", "progress"]

_MARKS = {
    "started": "...",
    "done": "ok ",
    "failed": "ERR",
    "skipped": "-- ",
    "waiting": "...",
    "warning": "!! ",
    "info": "   ",
}


class JsonLinesReporter:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr

    def emit(self, event: ProgressEvent) -> None:
        data: dict[str, Any] = {"time": round(time.time(), 3), **event.to_dict()}
        self._stream.write(json.dumps(data) + "\n")
        self._stream.flush()


class PlainReporter:
    """One line per event, for logs. ``verbose`` also shows step starts and waits."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self._stream = stream or sys.stderr
        self._verbose = verbose

    def emit(self, event: ProgressEvent) -> None:
        if event.kind == "planned" or (event.kind in ("started", "waiting") and not self._verbose):
            return
        line = f"{_MARKS[event.kind]} {event.title}"
        if event.detail:
            line += f": {event.detail}"
        self._stream.write(line + "\n")
        self._stream.flush()


class LiveReporter:
    """A rich live view: a spinner per running step, finished steps scroll above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(stderr=True)
        self._running: dict[str, tuple[str, str | None]] = {}
        self._live = Live(
            self._render(), console=self._console, refresh_per_second=8, transient=True
        )

    def _render(self) -> Any:
        from rich.console import Group
        from rich.spinner import Spinner

        rows = [
            Spinner("dots", text=f"{title}" + (f" [dim]({detail})[/dim]" if detail else ""))
            for title, detail in self._running.values()
        ]
        return Group(*rows) if rows else ""

    def emit(self, event: ProgressEvent) -> None:
        style = {"done": "green", "failed": "red", "skipped": "yellow", "warning": "yellow"}
        if event.kind == "planned":
            return
        if event.kind in ("started", "waiting"):
            self._running[event.key or event.title] = (event.title, event.detail)
        else:
            self._running.pop(event.key, None)
            color = style.get(event.kind, "cyan")
            mark = {"done": "✓", "failed": "✗", "skipped": "-", "warning": "!"}.get(event.kind, "·")
            detail = f": {event.detail}" if event.detail else ""
            self._console.print(f"[{color}]{mark}[/{color}] {event.title}{detail}", highlight=False)
        self._live.update(self._render())

    def __enter__(self) -> LiveReporter:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()


@contextlib.contextmanager
def progress(out: Output) -> Iterator[Reporter]:
    """The reporter for this run: JSON lines, a live view on a terminal, or plain lines."""
    if out.json:
        yield JsonLinesReporter()
    elif sys.stderr.isatty() and not out.debug:
        with LiveReporter() as live:
            yield live
    else:
        yield PlainReporter(verbose=bool(out.verbose))
