"""The fake's state and the one way every call records itself, fails, finds and changes.

Every port method of the fake is the same steps: record the call (and maybe fail before the
change), check, change one store, then maybe fail after the change (the answer was lost).
``FakeState`` keeps the stores and does those steps once; ``_network`` and ``_compute`` hold
the methods per resource type.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hk8s.errors import ConflictError, NotFoundError
from hk8s.model.labels import match_selector

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.model.catalogue import LoadBalancerType, Location
    from hk8s.model.resources import (
        Firewall,
        Image,
        LoadBalancer,
        Network,
        PlacementGroup,
        Server,
        ServerType,
        SSHKey,
        Volume,
    )

__all__ = ["MUTATING_PREFIXES", "FakeState"]

MUTATING_PREFIXES = (
    "create_",
    "delete_",
    "add_",
    "set_",
    "apply_",
    "remove_",
    "attach_",
    "change_",
    "update_",
    "power_",
    "shutdown",
    "enable_",
)


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R")
I = TypeVar("I", bound=_Identified)  # noqa: E741


@dataclass
class _Fault:
    error: Exception
    times: int
    after: bool


@dataclass
class FakeState:
    """In-memory Hetzner project. Inspect ``networks``, ``firewalls``, ... directly."""

    networks: dict[int, Network] = field(default_factory=dict)
    firewalls: dict[int, Firewall] = field(default_factory=dict)
    load_balancers: dict[int, LoadBalancer] = field(default_factory=dict)
    placement_groups: dict[int, PlacementGroup] = field(default_factory=dict)
    servers: dict[int, Server] = field(default_factory=dict)
    images: dict[int, Image] = field(default_factory=dict)
    ssh_keys: dict[int, SSHKey] = field(default_factory=dict)
    volumes: dict[int, Volume] = field(default_factory=dict)
    types: list[ServerType] = field(default_factory=list)
    lb_types: list[LoadBalancerType] = field(default_factory=list)
    catalogue_locations: list[Location] = field(default_factory=list)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- test helpers
    def fail(self, method: str, error: Exception, *, times: int = 1, after: bool = False) -> None:
        self._faults.setdefault(method, []).append(_Fault(error, times, after))

    def mutations(self) -> list[str]:
        return [name for name, _ in self.calls if name.startswith(MUTATING_PREFIXES)]

    # -- the steps of a call
    def _call(self, name: str, *args: Any) -> _Fault | None:
        self.calls.append((name, args))
        queue = self._faults.get(name) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if not fault.after:
            raise fault.error
        return fault

    @staticmethod
    def _done(fault: _Fault | None) -> None:
        if fault is not None:
            raise fault.error

    def _new_id(self) -> int:
        return next(self._ids)

    @staticmethod
    def _unique(store: dict[int, Any], name: str) -> None:
        if any(r.name == name for r in store.values()):
            raise ConflictError(f"name {name!r} is already used", code="uniqueness_error")

    @staticmethod
    def _get(store: dict[int, R], rid: int, kind: str) -> R:
        if rid not in store:
            raise NotFoundError(f"{kind} {rid} not found", code="not_found")
        return store[rid]

    @staticmethod
    def _select(store: dict[int, R], selector: str | None, name: str | None) -> list[R]:
        return [
            r
            for r in store.values()
            if (selector is None or match_selector(selector, r.labels))  # type: ignore[attr-defined]
            and (name is None or r.name == name)  # type: ignore[attr-defined]
        ]

    # -- the shapes of the port's methods
    def _list(
        self, method: str, store: dict[int, R], selector: str | None, name: str | None
    ) -> list[R]:
        self._call(method, selector, name)
        return self._select(store, selector, name)

    def _create(
        self,
        method: str,
        spec: Any,
        store: dict[int, I],
        build: Callable[[int], I],
        then: Callable[[I], None] | None = None,
    ) -> I:
        """A new resource under a unique ``spec.name``; ``then`` follows up before the answer."""
        fault = self._call(method, spec)
        self._unique(store, spec.name)
        item = build(self._new_id())
        store[item.id] = item
        if then is not None:
            then(item)
        self._done(fault)
        return item

    def _delete(
        self,
        method: str,
        store: dict[int, R],
        rid: int,
        kind: str,
        *,
        check: Callable[[R], None] | None = None,
        then: Callable[[R], None] | None = None,
    ) -> None:
        """Delete after ``check``; ``protected`` (HTTP 423) while its delete protection is on."""
        fault = self._call(method, rid)
        current = self._get(store, rid, kind)
        if getattr(current, "protected", False):
            raise ConflictError(f"{kind} {rid} is protected against deletion", code="protected")
        if check is not None:
            check(current)
        del store[rid]
        if then is not None:
            then(current)
        self._done(fault)

    def _replace(
        self, store: dict[int, R], rid: int, kind: str, fault: _Fault | None, **changes: Any
    ) -> R:
        """The resource with ``changes`` (the model types are frozen), then the fault."""
        item: R = dataclasses.replace(self._get(store, rid, kind), **changes)  # type: ignore[type-var]
        store[rid] = item
        self._done(fault)
        return item
