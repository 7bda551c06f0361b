"""Ordering rules between operations, as pure functions.

Hetzner resources refer to each other: a subnet lives in a network, a load balancer is attached
to the network (through a subnet in its zone), a server is created with its network, placement
group, SSH keys and (by label) firewall. So creates and updates run dependencies first, and
deletes run dependents first (a network cannot be deleted while a load balancer is attached:
the API answers ``conflict``/``resource_in_use``). Planners state explicit ``depends_on``; these
rules add the ones implied by the kinds, so a planner for servers plugged in later is ordered
against infra without knowing about it.

>>> ops = [Operation("create", "load-balancer", "c-api", "missing"),
...        Operation("create", "network", "c", "missing")]
>>> [[op.key for op in wave] for wave in execution_waves(add_implied_dependencies(ops))]
[['network/c'], ['load-balancer/c-api']]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.controller._plan import KIND_ORDER, Operation, Plan

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "REQUIRES",
    "add_implied_dependencies",
    "build_plan",
    "execution_waves",
    "implied_dependencies",
    "sort_operations",
]

# kind -> kinds that must exist before it is created or changed.
REQUIRES: dict[str, frozenset[str]] = {
    "subnet": frozenset({"network"}),
    "load-balancer": frozenset({"network", "subnet"}),
    "server": frozenset({"network", "subnet", "firewall", "placement-group", "ssh-key"}),
    "addon": frozenset({"server"}),  # charts are installed once the nodes are up
}


def implied_dependencies(op: Operation, others: Iterable[Operation]) -> tuple[str, ...]:
    """The keys ``op`` must wait for by the kind rules (excluding itself).

    - create/update of K waits for create/update of every kind K requires;
    - delete of K waits for deletes of every kind that requires K.
    """
    keys: list[str] = []
    for other in others:
        if other.key == op.key and other.type == op.type:
            continue
        if op.type in ("create", "update"):
            if other.type != "delete" and other.kind in REQUIRES.get(op.kind, ()):
                keys.append(other.key)
        elif other.type == "delete" and op.kind in REQUIRES.get(other.kind, ()):
            keys.append(other.key)
    return tuple(dict.fromkeys(keys))


def add_implied_dependencies(ops: Sequence[Operation]) -> list[Operation]:
    """Every operation with its explicit and implied dependencies."""
    return [op.with_dependencies(implied_dependencies(op, ops)) for op in ops]


def _rank(op: Operation) -> tuple[int, int, str]:
    kinds = {kind: i for i, kind in enumerate(KIND_ORDER)}
    verb = {"delete": 0, "create": 1, "update": 2}[op.type]
    return (kinds.get(op.kind, len(kinds)), verb, op.key)


def execution_waves(ops: Sequence[Operation]) -> list[list[Operation]]:
    """Operations in waves: everything in a wave depends only on earlier waves.

    Dependencies on keys that are not in the plan count as satisfied (the resource exists).
    Raises ``ValueError`` on a cycle, which is a planner bug, never a user error.
    """
    by_key: dict[str, Operation] = {}
    for op in ops:
        if op.key in by_key:
            raise ValueError(f"two operations share the key {op.key!r}")
        by_key[op.key] = op
    pending = {op.key: {d for d in op.depends_on if d in by_key} for op in ops}
    waves: list[list[Operation]] = []
    done: set[str] = set()
    while pending:
        ready = [key for key, deps in pending.items() if deps <= done]
        if not ready:
            raise ValueError(f"dependency cycle between {sorted(pending)}")
        wave = sorted((by_key[key] for key in ready), key=_rank)
        waves.append(wave)
        for key in ready:
            del pending[key]
            done.add(key)
    return waves


def sort_operations(ops: Sequence[Operation]) -> list[Operation]:
    """A stable topological order: by wave, then kind, verb and name."""
    return [op for wave in execution_waves(ops) for op in wave]


def build_plan(ops: Sequence[Operation]) -> Plan:
    """The plan for ``ops``: implied dependencies added, in execution order."""
    return Plan(tuple(sort_operations(add_implied_dependencies(ops))))
