from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hk8s.model import SystemClock, Timing
from hk8s.providers.hcloud import HcloudProvider
from hk8s.sim.hcloud import HcloudSim

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SPEED = 50.0


@pytest.fixture
async def sim() -> AsyncIterator[HcloudSim]:
    async with HcloudSim.start(speed=SPEED) as running:
        yield running


def make_provider(sim: HcloudSim, **kwargs: Any) -> HcloudProvider:
    # As the CLI runs against a simulator: real clock, Timing scaled by HK8S_TIME_SCALE.
    timing = kwargs.pop("timing", Timing().scaled(SPEED))
    return HcloudProvider(
        sim.token, endpoint=sim.endpoint, clock=SystemClock(), timing=timing, **kwargs
    )


@pytest.fixture
async def provider(sim: HcloudSim) -> AsyncIterator[HcloudProvider]:
    p = make_provider(sim)
    yield p
    p.close()


@pytest.fixture
def provider_factory(sim: HcloudSim) -> Any:
    made: list[HcloudProvider] = []

    def factory(**kwargs: Any) -> HcloudProvider:
        made.append(make_provider(sim, **kwargs))
        return made[-1]

    yield factory
    for p in made:
        p.close()
