"""Several hk8s processes sharing one project's small rate-limit bucket, against the simulator.

Each ``HcloudProvider`` has its own limiter, as separate processes (parallel CI pipelines with
one token) would: they only learn about each other from the headers and from 429s.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hk8s.model import SystemClock, Timing
from hk8s.model.resources import FirewallSpec, NetworkSpec, PlacementGroupSpec, Subnet
from hk8s.providers.hcloud import HcloudProvider
from hk8s.sim.hcloud import HcloudSim

if TYPE_CHECKING:
    from hk8s.sim.hcloud._stats import Stats

SPEED = 50.0
BUCKET = 10
PIPELINES = 6
ROUNDS = 2  # enough for the steady state to outweigh the opening burst into the full bucket


async def pipeline(provider: HcloudProvider, name: str) -> None:
    """A CI job running ``ROUNDS`` clusters' ``infra`` and ``destroy`` one after another."""
    for n in range(ROUNDS):
        await infra_and_destroy(provider, f"{name}-{n}")


async def infra_and_destroy(provider: HcloudProvider, name: str) -> None:
    """What one ``hk8s infra`` + ``destroy`` asks of the API, in miniature (~20 requests)."""
    labels = {"cluster": name, "managed-by": "hk8s"}
    selector = f"cluster={name}"
    await asyncio.gather(
        provider.list_networks(selector),
        provider.list_firewalls(selector),
        provider.list_load_balancers(selector),
        provider.list_placement_groups(selector),
        provider.list_servers(selector),
    )
    net, fw = await asyncio.gather(
        provider.create_network(NetworkSpec(name, "10.0.0.0/16", labels)),
        provider.create_firewall(FirewallSpec(f"{name}-fw", labels, (), ())),
    )
    groups = await asyncio.gather(
        *(
            provider.create_placement_group(PlacementGroupSpec(f"{name}-pg-{k}", labels))
            for k in "ab"
        )
    )
    await provider.add_subnet(net.id, Subnet("10.0.1.0/24", "eu-central"))
    assert [n.id for n in await provider.list_networks(selector)] == [net.id]
    await asyncio.gather(
        provider.delete_network(net.id),
        provider.delete_firewall(fw.id),
        *(provider.delete_placement_group(g.id) for g in groups),
    )


def share_429(stats: Stats) -> float:
    return stats.rate_limited / stats.total


async def test_pipelines_sharing_a_small_bucket_neither_storm_nor_give_up() -> None:
    async with HcloudSim.start(speed=SPEED, rate_limit=BUCKET) as sim:
        timing = Timing().scaled(SPEED)
        providers = [
            HcloudProvider(sim.token, endpoint=sim.endpoint, clock=SystemClock(), timing=timing)
            for _ in range(PIPELINES)
        ]
        try:
            results = await asyncio.gather(
                *(pipeline(p, f"ci{i}") for i, p in enumerate(providers)), return_exceptions=True
            )
        finally:
            for p in providers:
                p.close()
        assert [r for r in results if r is not None] == []  # nobody gave up
        assert not sim.state.networks and not sim.state.firewalls
        # Far beyond the bucket: most requests had to wait for the refill.
        assert sim.stats.total > 5 * BUCKET
        # Unpaced, every process sends at the full refill rate: about half of all requests
        # met an empty bucket and some pipelines gave up. Sharing the refill rate, mostly the
        # opening burst into the full bucket does (measured: 13-14%).
        assert share_429(sim.stats) < 0.25, sim.stats.snapshot()
        # No pipeline was left hammering the empty bucket while the others got through.
        assert max(p.limiter.throttled / p.adapter.sent for p in providers) < 0.4
