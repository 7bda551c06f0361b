"""Progress reporting: the controller says what it is doing, the CLI decides how to show it.

Steps (one per plan operation) and named conditions (``waiting for network to be ready``) are
events sent to a ``Reporter``. The CLI renders them as a live view, plain lines or JSON lines
(``hk8s.cli._progress``); tests record them. After talos' ``pkg/cluster/check`` reporter.

Every event belongs to a *phase* (``servers``, ``machine configs``, ``etcd``, ...), so a
person watching 100 nodes come up reads ten lines of phases with counts, not hundreds of
steps. The phase follows from the event's key (``server/demo-cp-1`` is in ``servers``,
``addon/cilium`` in ``addons``: ``phase_of``) unless the emitting code names another one: the
same node key is a machine-config step while its config is applied and an etcd step while etcd
is bootstrapped on it. ``planned`` events announce steps before they run, so a phase knows its
total (``servers 37/100``) while most of its steps still wait for a slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "PHASES",
    "EventKind",
    "NullReporter",
    "ProgressEvent",
    "RecordingReporter",
    "Reporter",
    "phase_of",
]

EventKind = Literal[
    "planned",  # a step will run (``phase`` counts it in its total) but has not started
    "started",  # a step began
    "done",  # a step succeeded
    "failed",  # a step raised; ``detail`` is the error
    "skipped",  # a step did not run because a dependency failed
    "waiting",  # a named condition is still pending; ``detail`` says on what
    "warning",  # something the operator should know (``key`` may be empty)
    "info",  # a notable fact, e.g. an adopted resource
]

# The phases of a cluster's life in the order ``create`` goes through them; commands use the
# subset they need, and a key outside this table makes a phase named after its first segment.
PHASES = (
    "preflight",
    "snapshots",
    "infrastructure",
    "servers",
    "machine configs",
    "etcd",
    "Kubernetes API",
    "addons",
    "nodes Ready",
    "scale down",
    "in-cluster cleanup",
    "upgrade",
    "health",
)

# First segment of an event key -> its phase.
_BY_PREFIX = {
    "secrets": "preflight",
    "versions": "preflight",
    "image": "snapshots",
    "snapshot": "snapshots",
    "network": "infrastructure",
    "subnet": "infrastructure",
    "firewall": "infrastructure",
    "load-balancer": "infrastructure",
    "placement-group": "infrastructure",
    "protection": "infrastructure",
    "ssh-key": "infrastructure",
    "server": "servers",
    "node": "machine configs",
    "etcd": "etcd",
    "kubeconfig": "Kubernetes API",
    "addon": "addons",
    "nodes": "nodes Ready",
    "health": "health",
    "upgrade": "upgrade",
}


def phase_of(key: str) -> str:
    """The phase of an event key when its emitter names none.

    >>> phase_of("server/demo-cp-1"), phase_of("kubernetes"), phase_of("kubernetes/pvc/x")
    ('servers', 'Kubernetes API', 'in-cluster cleanup')
    """
    if key == "kubernetes":
        return "Kubernetes API"  # create's "Kubernetes API at https://..." wait
    head = key.split("/", 1)[0]
    if head == "kubernetes":
        return "in-cluster cleanup"  # destroy's deletions inside the cluster
    return _BY_PREFIX.get(head, head)


@dataclass(frozen=True)
class ProgressEvent:
    kind: EventKind
    key: str
    title: str
    detail: str | None = None
    phase: str = ""  # empty: ``phase_of(key)``

    def __post_init__(self) -> None:
        if not self.phase and self.key:
            object.__setattr__(self, "phase", phase_of(self.key))

    def to_dict(self) -> dict[str, str]:
        data = {"event": self.kind, "key": self.key, "title": self.title}
        if self.detail is not None:
            data["detail"] = self.detail
        if self.phase:
            data["phase"] = self.phase
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
