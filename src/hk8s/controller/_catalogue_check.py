"""The catalogue check every changing command runs first: the config against what Hetzner
sells right now, before the first mutating request.

``plan``, ``create`` and ``infra`` (purpose ``servers``) refuse, with exit 2 and nothing
changed, a server type that does not exist, cannot be ordered in its pool's location any
more, or is not offered there, and a load balancer type or location likewise; they warn
about a type that is deprecated but still orderable, or sold out for now. ``upgrade`` and
``image build`` order no pool servers, so for them only a type that does not exist at all is
refused (its architecture decides the snapshots); the rest are warnings.

Up to three list calls (server types, load balancer types, locations), concurrently; the
load balancer types only where a load balancer is judged (a run ordering servers for a cluster
with an API load balancer). The provider keeps the answers for the rest of the run.
``config validate`` stays offline and says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from hk8s.controller._catalogue import Verdict, judge_lb_type, judge_server_type
from hk8s.errors import ConfigError, ConfigProblem
from hk8s.model.catalogue import Catalogue

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.config import ClusterConfig
    from hk8s.model.catalogue import LoadBalancerType
    from hk8s.providers.hcloud import HcloudPort

__all__ = ["CatalogueReport", "Purpose", "check_catalogue", "judge_config", "read_catalogue"]

Purpose = Literal["servers", "upgrade", "image"]


@dataclass(frozen=True)
class CatalogueReport:
    """What the check read, and what the operator should know though nothing is refused."""

    catalogue: Catalogue
    warnings: list[str] = field(default_factory=list)


async def read_catalogue(hcloud: HcloudPort, *, load_balancers: bool = True) -> Catalogue:
    """The catalogue; ``load_balancers=False`` leaves out the load balancer types (no request
    for a run that judges none: an empty tuple)."""

    async def no_types() -> list[LoadBalancerType]:
        return []

    server_types, lb_types, locations = await asyncio.gather(
        hcloud.server_types(),
        hcloud.load_balancer_types() if load_balancers else no_types(),
        hcloud.locations(),
    )
    return Catalogue(tuple(server_types), tuple(lb_types), tuple(locations))


def _judges_load_balancer(config: ClusterConfig, purpose: Purpose) -> bool:
    """Whether ``judge_config`` looks at the load balancer type: only a run that orders
    servers, for a cluster with an API load balancer."""
    return purpose == "servers" and config.load_balancer.enabled


def _utc_now() -> datetime:
    return datetime.now(UTC)


def judge_config(
    config: ClusterConfig, catalogue: Catalogue, now: datetime, purpose: Purpose = "servers"
) -> tuple[list[ConfigProblem], list[str]]:
    """(problems that refuse the run, warnings) for ``config`` against ``catalogue``."""
    problems: list[ConfigProblem] = []
    warnings: list[str] = []

    def record(path: str, verdict: Verdict, refuse: bool = True) -> None:
        if verdict.level == "refuse" and refuse:
            problems.append(ConfigProblem(path, verdict.message, hint=verdict.hint))
        elif verdict.level != "ok":
            warnings.append(f"{path}: {verdict.message}")

    ordering = purpose == "servers"
    places = [("location", config.location)]
    if config.control_plane.location:
        places.append(("control_plane.location", config.control_plane.location))
    places += [
        (f"workers[{i}].location", w.location) for i, w in enumerate(config.workers) if w.location
    ]
    if config.load_balancer.enabled and config.load_balancer.location:
        places.append(("load_balancer.location", config.load_balancer.location))
    names = ", ".join(loc.name for loc in catalogue.locations)
    for path, name in places:
        if catalogue.location(name) is None:
            message = f"Hetzner offers no location {name} (GET /locations lists: {names})"
            record(path, Verdict("refuse", message, f"use one of: {names}"), ordering)

    pool_paths = ["control_plane.server_type"] + [
        f"workers[{i}].server_type" for i in range(len(config.workers))
    ]
    types = catalogue.server_types
    for path, pool in zip(pool_paths, config.pools(), strict=True):
        verdict = judge_server_type(pool.server_type, pool.location, types, now)
        exists = catalogue.server_type(pool.server_type) is not None
        record(path, verdict, refuse=ordering or not exists)

    if _judges_load_balancer(config, purpose):
        lb = config.load_balancer
        verdict = judge_lb_type(
            lb.type, config.load_balancer_location, catalogue.load_balancer_types, now
        )
        record("load_balancer.type", verdict)
    return problems, warnings


async def check_catalogue(
    config: ClusterConfig,
    hcloud: HcloudPort,
    *,
    purpose: Purpose = "servers",
    source: str = "cluster.yaml",
    now: Callable[[], datetime] = _utc_now,
) -> CatalogueReport:
    """Read the catalogue and judge ``config``; raises ``ConfigError`` (exit 2) listing
    every refused type before anything is changed.

    >>> report = await check_catalogue(config, provider, source="cluster.yaml")
    >>> for warning in report.warnings: ...
    """
    catalogue = await read_catalogue(hcloud, load_balancers=_judges_load_balancer(config, purpose))
    problems, warnings = judge_config(config, catalogue, now(), purpose)
    if problems:
        raise ConfigError(f"{source} (checked against the Hetzner API)", problems)
    return CatalogueReport(catalogue, warnings)
