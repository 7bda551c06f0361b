"""Judging server and load balancer types against the live catalogue: pure decisions.

A Hetzner type name is family + size digit + generation digit: ``cx22`` is the shared
cost-optimized family ``cx``, size 2, generation 2; its successor ``cx23`` is the same
family and size, generation 3 (docs.hetzner.cloud changelog 2025-10-16, "Server Types
deprecated": cx22..cx52 -> cx23..cx53, cpx11..cpx51 -> cpx12..cpx62). So when a type has
gone, or cannot be ordered where the pool is, hk8s names

- its successor: same family and size, a newer generation, orderable in that location;
- otherwise the nearest current alternatives: orderable there, same architecture, the same
  family first, then the closest in cores and memory, types not deprecated first.

>>> judge_server_type("cx22", "fsn1", types, now).message
'server type cx22 no longer exists at Hetzner; cx23 is its successor'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from hk8s.model.catalogue import LoadBalancerType, ServerType

__all__ = [
    "TypeName",
    "Verdict",
    "alternatives",
    "judge_lb_type",
    "judge_server_type",
    "parse_type_name",
    "successor",
]

_NAME = re.compile(r"^([a-z]+)(\d)(\d)$")


@dataclass(frozen=True)
class TypeName:
    family: str
    size: int | None = None
    generation: int | None = None


def parse_type_name(name: str) -> TypeName:
    """``"cpx21"`` -> ``TypeName("cpx", 2, 1)``; other shapes keep only their letters."""
    match = _NAME.match(name)
    if match is None:
        return TypeName(re.sub(r"[^a-z].*$", "", name))
    return TypeName(match[1], int(match[2]), int(match[3]))


@dataclass(frozen=True)
class Verdict:
    """``ok``; ``warn`` (orderable, but the operator should know); ``refuse`` (exit 2)."""

    level: Literal["ok", "warn", "refuse"]
    message: str = ""
    hint: str | None = None


OK = Verdict("ok")


def _date(moment: datetime) -> str:
    return moment.date().isoformat()


def _deprecated_in(server_type: ServerType, location: str) -> bool:
    offer = server_type.offer(location)
    return offer is not None and offer.deprecation is not None


def successor(
    name: str, types: Sequence[ServerType], location: str, now: datetime
) -> ServerType | None:
    """The newest generation of the same family and size orderable in ``location``."""
    wanted = parse_type_name(name)
    if wanted.size is None or wanted.generation is None:
        return None
    found = []
    for candidate in types:
        parsed = parse_type_name(candidate.name)
        if (
            parsed.family == wanted.family
            and parsed.size == wanted.size
            and (parsed.generation or 0) > wanted.generation
            and candidate.orderable_in(location, now)
        ):
            found.append((parsed.generation or 0, candidate))
    return max(found, key=lambda pair: pair[0])[1] if found else None


def _reference(name: str, types: Sequence[ServerType]) -> ServerType | None:
    """The type itself, or (when it is gone) the newest one of its family and size."""
    by_name = {t.name: t for t in types}
    if name in by_name:
        return by_name[name]
    wanted = parse_type_name(name)
    same = [
        t
        for t in types
        if (p := parse_type_name(t.name)).family == wanted.family and p.size == wanted.size
    ]
    return max(same, key=lambda t: parse_type_name(t.name).generation or 0) if same else None


def alternatives(
    name: str, types: Sequence[ServerType], location: str, now: datetime, limit: int = 3
) -> list[ServerType]:
    """Types orderable in ``location`` nearest to ``name`` (see the module docstring)."""
    wanted = parse_type_name(name)
    ref = _reference(name, types)
    family_arch = next(
        (t.architecture for t in types if parse_type_name(t.name).family == wanted.family), None
    )
    arch = ref.architecture if ref is not None else family_arch

    def distance(t: ServerType) -> float:
        if ref is None:
            size = parse_type_name(t.name).size
            return abs((size or 0) - (wanted.size or 0))
        return abs(math.log2(t.cores / ref.cores)) + abs(math.log2(t.memory / ref.memory))

    candidates = [
        t
        for t in types
        if t.name != name
        and t.orderable_in(location, now)
        and (arch is None or t.architecture == arch)
    ]
    candidates.sort(
        key=lambda t: (
            parse_type_name(t.name).family != wanted.family,
            _deprecated_in(t, location),
            distance(t),
            -(parse_type_name(t.name).generation or 0),
            t.name,
        )
    )
    return candidates[:limit]


def _instead(
    name: str, types: Sequence[ServerType], location: str, now: datetime
) -> tuple[str, str | None]:
    """``("; cx23 is its successor", "set server_type: cx23")`` or the alternatives."""
    heir = successor(name, types, location, now)
    if heir is not None:
        return f"; {heir.name} is its successor", f"set server_type: {heir.name}"
    near = alternatives(name, types, location, now)
    if not near:
        return "", f"no server type of this kind can be ordered in {location} right now"
    names = ", ".join(t.name for t in near)
    return (
        f"; nearest current alternatives in {location}: {names}",
        f"set server_type to one of: {names}",
    )


def judge_server_type(
    name: str, location: str, types: Sequence[ServerType], now: datetime
) -> Verdict:
    """Can servers of ``name`` be ordered in ``location`` now, per the API's answer?"""
    server_type = next((t for t in types if t.name == name), None)
    if server_type is None:
        heir = _reference(name, types)
        gone = heir is not None and (parse_type_name(heir.name).generation or 0) > (
            parse_type_name(name).generation or 0
        )
        what = "no longer exists" if gone else "does not exist"
        tail, hint = _instead(name, types, location, now)
        return Verdict("refuse", f"server type {name} {what} at Hetzner{tail}", hint)
    offer = server_type.offer(location)
    if offer is None:
        tail, hint = _instead(name, types, location, now)
        where = ", ".join(server_type.location_names) or "no location"
        return Verdict(
            "refuse",
            f"server type {name} is not offered in {location} (only in {where}){tail}",
            hint,
        )
    if offer.deprecation is not None and offer.deprecation.over(now):
        tail, hint = _instead(name, types, location, now)
        return Verdict(
            "refuse",
            f"server type {name} can no longer be ordered in {location}: deprecated "
            f"{_date(offer.deprecation.announced)}, unavailable after "
            f"{_date(offer.deprecation.unavailable_after)}{tail}",
            hint,
        )
    if offer.deprecation is not None:
        tail, hint = _instead(name, types, location, now)
        return Verdict(
            "warn",
            f"server type {name} is deprecated in {location} and can be ordered there only "
            f"until {_date(offer.deprecation.unavailable_after)}{tail}",
            hint,
        )
    if not offer.available:
        tail, hint = _instead(name, types, location, now)
        return Verdict(
            "warn",
            f"server type {name} is sold out in {location} right now (the API says "
            f"available: false): new servers of it fail until Hetzner restocks{tail}",
            hint,
        )
    return OK


def judge_lb_type(
    name: str, location: str, lb_types: Sequence[LoadBalancerType], now: datetime
) -> Verdict:
    """Can a load balancer of ``name`` be ordered in ``location``?"""
    lb_type = next((t for t in lb_types if t.name == name), None)
    current = [
        t.name
        for t in lb_types
        if location in t.locations and not (t.deprecation and t.deprecation.over(now))
    ]
    hint = f"set load_balancer.type to one of: {', '.join(current)}" if current else None
    if lb_type is None:
        return Verdict("refuse", f"load balancer type {name} does not exist at Hetzner", hint)
    if lb_type.locations and location not in lb_type.locations:
        return Verdict("refuse", f"load balancer type {name} is not offered in {location}", hint)
    if lb_type.deprecation is not None:
        until = _date(lb_type.deprecation.unavailable_after)
        if lb_type.deprecation.over(now):
            return Verdict(
                "refuse",
                f"load balancer type {name} can no longer be ordered (since {until})",
                hint,
            )
        return Verdict(
            "warn", f"load balancer type {name} is deprecated and orderable until {until}", hint
        )
    return OK
