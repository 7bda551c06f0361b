"""The plan: what a reconcile will change, as data.

A ``Plan`` is an ordered list of typed ``Operation``s, each with the reason it exists and the
operations it must wait for. ``hk8s plan`` prints it, ``--output json`` serialises it, and the
executor runs it; nothing here does I/O (after poetry's ``Transaction.calculate_operations``:
the same object drives both the dry run and the real run).

>>> op = Operation("create", "network", "demo", reason="network does not exist")
>>> op.key
'network/demo'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import builtins

__all__ = ["KIND_ORDER", "Change", "Operation", "OperationType", "Plan"]

OperationType = Literal["create", "update", "delete"]

_T = TypeVar("_T")


def _expect(value: object, cls: type[_T], what: str) -> _T:
    if not isinstance(value, cls):
        raise TypeError(f"{what} is {type(value).__name__}, expected {cls.__name__}")
    return value


# The order kinds are listed in by ``plan`` (also the natural creation order).
KIND_ORDER: tuple[str, ...] = (
    "network",
    "subnet",
    "firewall",
    "placement-group",
    "load-balancer",
    "ssh-key",
    "server",
    "addon",
)


@dataclass(frozen=True)
class Change:
    """One field an update changes, for humans (``plan``) and machines (``--output json``)."""

    field: str
    old: object
    new: object

    def __str__(self) -> str:
        return f"{self.field}: {_short(self.old)} -> {_short(self.new)}"

    def new_as(self, cls: type[_T]) -> _T:
        """``new``, checked to be a ``cls`` (handlers read changes typed)."""
        return _expect(self.new, cls, f"change of {self.field}")


@dataclass(frozen=True)
class Operation:
    """One step of a plan.

    ``name`` is the resource's name (unique per kind), ``reason`` says why the step exists,
    ``depends_on`` holds the ``key``s of steps that must succeed first. ``desired`` is the spec to
    create or converge to, ``current`` what exists now (for update and delete); both are hk8s
    model types and opaque to the executor.
    """

    type: OperationType
    kind: str
    name: str
    reason: str
    depends_on: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    desired: object = None
    current: object = None
    # Detail a handler needs, e.g. ``{"parts": ["rules"]}``: which parts an update changes.
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique within a plan: one operation per resource and verb."""
        return f"{self.kind}/{self.name}"

    # ``builtins.type``: inside this class ``type`` is the operation's field.
    def desired_as(self, cls: builtins.type[_T]) -> _T:
        """``desired``, checked to be a ``cls``: ``op.desired_as(NetworkSpec)``."""
        return _expect(self.desired, cls, f"desired state of {self.key}")

    def current_as(self, cls: builtins.type[_T]) -> _T:
        """``current``, checked to be a ``cls``: ``op.current_as(Network)``."""
        return _expect(self.current, cls, f"current state of {self.key}")

    def describe(self) -> str:
        """One line for humans: ``create network demo: network does not exist``."""
        return f"{self.type} {self.kind} {self.name}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.type,
            "kind": self.kind,
            "name": self.name,
            "key": self.key,
            "reason": self.reason,
            "depends_on": list(self.depends_on),
        }
        if self.changes:
            data["changes"] = [
                {"field": c.field, "old": _jsonable(c.old), "new": _jsonable(c.new)}
                for c in self.changes
            ]
        if self.desired is not None:
            data["desired"] = _jsonable(self.desired)
        return data

    def with_dependencies(self, keys: tuple[str, ...]) -> Operation:
        merged = tuple(dict.fromkeys((*self.depends_on, *keys)))
        return dataclasses.replace(self, depends_on=merged)


@dataclass(frozen=True)
class Plan:
    """The operations of one reconcile, in a valid execution order."""

    operations: tuple[Operation, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.operations)

    def __len__(self) -> int:
        return len(self.operations)

    @property
    def empty(self) -> bool:
        return not self.operations

    def counts(self) -> dict[str, int]:
        """``{"create": 2, "update": 0, "delete": 1}`` for the summary line."""
        result = {"create": 0, "update": 0, "delete": 0}
        for op in self.operations:
            result[op.type] += 1
        return result

    def by_kind(self) -> list[tuple[str, list[Operation]]]:
        """Operations grouped by resource kind, kinds in ``KIND_ORDER`` then alphabetical."""
        groups: dict[str, list[Operation]] = {}
        for op in self.operations:
            groups.setdefault(op.kind, []).append(op)
        rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
        ordered = sorted(groups, key=lambda k: (rank.get(k, len(rank)), k))
        return [(kind, groups[kind]) for kind in ordered]

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes_pending": not self.empty,
            "summary": self.counts(),
            "operations": [op.to_dict() for op in self.operations],
        }

    def __add__(self, other: Plan) -> Plan:
        return Plan((*self.operations, *other.operations))


def _jsonable(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _short(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if value is None:
        return "none"
    return str(value)
