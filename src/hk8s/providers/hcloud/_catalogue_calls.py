"""Port calls for the catalogue: server types, load balancer types, locations.

Each is one list call per provider (the run): the answers are kept, so the catalogue check
before any change, the image build's choice of server type and the planners all read the
same answer (design.md section 4: a constant number of requests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from hk8s.model.catalogue import (
    Deprecation,
    LoadBalancerType,
    Location,
    ServerType,
    ServerTypeLocation,
)
from hk8s.providers.hcloud._base import ProviderBase

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "CatalogueCalls",
    "to_deprecation",
    "to_load_balancer_type",
    "to_location",
    "to_server_type",
]

_T = TypeVar("_T")


def _dm(obj: Any) -> Any:
    return getattr(obj, "data_model", obj)


def to_deprecation(info: Any) -> Deprecation | None:
    """hcloud's ``DeprecationInfo`` (datetimes parsed by the library) -> ours."""
    if info is None or info.unavailable_after is None:
        return None
    return Deprecation(info.announced or info.unavailable_after, info.unavailable_after)


def _monthly_net(prices: Any, location: str) -> float | None:
    for price in prices or ():
        if isinstance(price, dict) and price.get("location") == location:
            try:
                return float(price["price_monthly"]["net"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def to_server_type(bound: Any) -> ServerType:
    m = _dm(bound)
    locations = tuple(
        ServerTypeLocation(
            name=str(_dm(loc.location).name),
            # hcloud 2.27 leaves these None when the API omits them (before 2026-04-01):
            # then the type was sold wherever it was listed.
            available=loc.available is not False,
            recommended=bool(loc.recommended),
            deprecation=to_deprecation(loc.deprecation),
            monthly_price=_monthly_net(m.prices, str(_dm(loc.location).name)),
        )
        for loc in m.locations or ()
        if loc.location is not None
    )
    return ServerType(
        name=m.name,
        architecture=m.architecture,
        cores=int(m.cores),
        memory=float(m.memory),
        disk=int(m.disk),
        locations=locations,
        cpu_type=str(m.cpu_type or "shared"),
    )


def to_load_balancer_type(bound: Any) -> LoadBalancerType:
    m = _dm(bound)
    where = tuple(str(p["location"]) for p in m.prices or () if isinstance(p, dict))
    return LoadBalancerType(m.name, where, to_deprecation(m.deprecation))


def to_location(bound: Any) -> Location:
    m = _dm(bound)
    return Location(m.name, m.network_zone)


class CatalogueCalls(ProviderBase):
    """The catalogue lists, each read once per provider: what Hetzner sells does not change
    in a way a run must follow, and a run reads it from several places."""

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[list[_T]]]) -> list[_T]:
        cache: dict[str, list[Any]] = self.__dict__.setdefault("_catalogue_cache", {})
        if key not in cache:
            cache[key] = await fetch()
        return list(cache[key])  # a copy: callers may sort or filter it

    async def server_types(self) -> list[ServerType]:
        async def fetch() -> list[ServerType]:
            found = await self._run("list server types", self.client.server_types.get_all)
            return [to_server_type(t) for t in found]

        return await self._cached("server_types", fetch)

    async def load_balancer_types(self) -> list[LoadBalancerType]:
        async def fetch() -> list[LoadBalancerType]:
            found = await self._run(
                "list load balancer types", self.client.load_balancer_types.get_all
            )
            return [to_load_balancer_type(t) for t in found]

        return await self._cached("load_balancer_types", fetch)

    async def locations(self) -> list[Location]:
        async def fetch() -> list[Location]:
            found = await self._run("list locations", self.client.locations.get_all)
            return [to_location(loc) for loc in found]

        return await self._cached("locations", fetch)
