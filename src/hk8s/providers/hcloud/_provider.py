"""``HcloudProvider``: the ``HcloudPort`` implemented on the official hcloud library."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.providers.hcloud._catalogue_calls import CatalogueCalls
from hk8s.providers.hcloud._compute_calls import ComputeCalls
from hk8s.providers.hcloud._infra_calls import InfraCalls

if TYPE_CHECKING:
    from hk8s.providers.hcloud._port import HcloudPort

__all__ = ["HcloudProvider"]


class HcloudProvider(InfraCalls, ComputeCalls, CatalogueCalls):
    """Every Hetzner call hk8s makes, async and concurrent, paced by one rate limiter.

    >>> provider = HcloudProvider(token)   # HCLOUD_ENDPOINT and HK8S_TIME_SCALE honoured
    >>> # networks = await provider.list_networks("cluster=demo,managed-by=hk8s")
    """


if TYPE_CHECKING:
    # mypy proves the provider implements the whole port.
    def _implements_port(provider: HcloudProvider) -> HcloudPort:
        return provider
