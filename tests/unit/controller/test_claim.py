"""Two operators creating one cluster from two directories: the first writer wins.

The second stops before its first server (or snapshot build), with a message naming the
conflict, and leaves no second secrets bundle behind.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from controller_support import cluster
from hk8s.controller import create_cluster
from hk8s.controller._claim import claim_cluster
from hk8s.errors import ConflictError
from hk8s.pki import KeyAlgorithm, generate_secrets
from hk8s.providers.hcloud.fake import FakeHcloud

if TYPE_CHECKING:
    from controller_support import Harness


def _bundle() -> object:
    return generate_secrets(service_account_algorithm=KeyAlgorithm.ECDSA_P256)


async def test_a_second_operator_with_another_bundle_is_refused_before_any_server(
    harness: Harness,
) -> None:
    config = cluster(cp=1)
    await create_cluster(config, harness.ports(config), harness.options())
    servers_before = sorted(s.name for s in harness.hcloud.servers.values())
    other_dir = harness.tmp / "other"
    other_dir.mkdir()
    other = harness.options(secrets_path=other_dir / "secrets.yaml")
    # The second operator's directory has no secrets.yaml: create generates one, then the
    # claim refuses it (existing servers do not count here: the claim is checked first).
    harness.hcloud.servers.clear()
    with pytest.raises(ConflictError) as info:
        await create_cluster(config, harness.ports(config), other)
    assert "already claimed by another secrets bundle" in info.value.message
    assert not harness.hcloud.servers, "no server was created by the second operator"
    assert not (other_dir / "secrets.yaml").exists()
    assert servers_before


async def test_concurrent_claims_have_exactly_one_winner() -> None:
    fake = FakeHcloud()
    bundles = [_bundle() for _ in range(3)]
    results = await asyncio.gather(
        *(claim_cluster(fake, "demo", b) for b in bundles),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    winners = [r for r in results if r is True]
    losers = [r for r in results if isinstance(r, ConflictError)]
    assert (len(winners), len(losers)) == (1, 2)
    [claim] = fake.placement_groups.values()
    assert claim.name == "demo-claim"


async def test_the_claiming_bundle_passes_again() -> None:
    fake = FakeHcloud()
    bundle = _bundle()
    assert await claim_cluster(fake, "demo", bundle) is True  # type: ignore[arg-type]
    assert await claim_cluster(fake, "demo", bundle) is False  # type: ignore[arg-type]
    assert await claim_cluster(fake, "other", _bundle()) is True  # type: ignore[arg-type]
