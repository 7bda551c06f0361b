"""Progress reporting: the controller says what it is doing, the CLI decides how to show it.

Steps (one per plan operation) and named conditions (``waiting for network to be ready``) are
events sent to a ``Reporter``. The CLI renders them as a live view, plain lines or JSON lines
(``hk8s.cli._progress``); tests record them. After talos' ``pkg/cluster/check`` reporter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["EventKind", "NullReporter", "ProgressEvent", "RecordingReporter", "Reporter"]

EventKind = Literal[
    "started",  # a step began
    "done",  # a step succeeded
    "failed",  # a step raised; ``detail`` is the error
    "skipped",  # a step did not run because a dependency failed
    "waiting",  # a named condition is still pending; ``detail`` says on what
    "warning",  # something the operator should know (``key`` may be empty)
    "info",  # a notable fact, e.g. an adopted resource
]


@dataclass(frozen=True)
class ProgressEvent:
    kind: EventKind
    key: str
    title: str
    detail: str | None = None

    def to_dict(self) -> dict[str, str]:
        data = {"event": self.kind, "key": self.key, "title": self.title}
        if self.detail is not None:
            data["detail"] = self.detail
        return data


class Reporter(Protocol):
    def emit(self, event: ProgressEvent) -> None: ...


class NullReporter:
    """Drops every event (library use, tests that do not look at progress)."""

    def emit(self, event: ProgressEvent) -> None:
        return None


@dataclass
class RecordingReporter:
    """Keeps every event, for tests and for summaries."""

    events: list[ProgressEvent] = field(default_factory=list)

    def emit(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def kinds(self, kind: EventKind) -> list[str]:
        return [e.key for e in self.events if e.kind == kind]
