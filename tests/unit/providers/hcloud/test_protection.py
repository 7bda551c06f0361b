"""Delete protection and volumes through ``HcloudProvider`` (simulated API) and ``FakeHcloud``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from hk8s.errors import ConflictError, NotFoundError
from hk8s.model.resources import (
    LoadBalancerSpec,
    NetworkSpec,
    ServerSpec,
    Subnet,
)
from hk8s.providers.hcloud.fake import FakeHcloud

if TYPE_CHECKING:
    from hk8s.providers.hcloud import HcloudProvider, ProtectableKind
    from hk8s.sim.hcloud import HcloudSim

LABELS = {"cluster": "demo", "managed-by": "hk8s"}


async def _volume(provider: HcloudProvider, name: str, labels: dict[str, str]) -> int:
    """A volume as the CSI driver makes one (hk8s itself never creates volumes)."""
    from hcloud.locations import Location

    created = await provider._run(
        "create volume",
        provider.client.volumes.create,
        10,
        name,
        labels=labels,
        location=Location(name="fsn1"),
    )
    return int(created.volume.id or 0)


async def _one_of_each(provider: HcloudProvider) -> dict[ProtectableKind, int]:
    net = await provider.create_network(
        NetworkSpec("demo", "10.0.0.0/16", LABELS, (Subnet("10.0.1.0/24", "eu-central"),))
    )
    lb = await provider.create_load_balancer(LoadBalancerSpec("demo-api", "lb11", "fsn1", LABELS))
    server = await provider.create_server(
        ServerSpec("demo-cp-1", "cx23", "ubuntu-24.04", "fsn1", LABELS, start_after_create=False)
    )
    image = await provider.create_snapshot(server.id, "talos", dict(LABELS))
    volume = await _volume(provider, "pvc-1", {"managed-by": "csi-driver"})
    return {
        "network": net.id,
        "load-balancer": lb.id,
        "server": server.id,
        "image": image.id,
        "volume": volume,
    }


async def _listed(provider: HcloudProvider, kind: ProtectableKind, rid: int) -> Any:
    if kind == "image":
        return await provider.get_image(rid)
    if kind == "volume":
        return await provider.get_volume(rid)
    lists = {
        "network": provider.list_networks,
        "load-balancer": provider.list_load_balancers,
        "server": provider.list_servers,
    }
    return next(r for r in await lists[kind]() if r.id == rid)


async def test_protection_is_read_set_and_refuses_deletes(
    sim: HcloudSim, provider: HcloudProvider
) -> None:
    ids = await _one_of_each(provider)
    deleters = {
        "network": provider.delete_network,
        "load-balancer": provider.delete_load_balancer,
        "server": provider.delete_server,
        "image": provider.delete_image,
        "volume": provider.delete_volume,
    }
    for kind, rid in ids.items():
        assert (await _listed(provider, kind, rid)).protected is False
        await provider.set_delete_protection(kind, rid, True)
        assert (await _listed(provider, kind, rid)).protected is True, kind
    # The API wants a server's rebuild protection equal to its delete protection.
    assert sim.state.servers[ids["server"]].protection_rebuild is True
    for kind, rid in ids.items():
        with pytest.raises(ConflictError) as info:
            await deleters[kind](rid)
        assert info.value.context["code"] == "protected", kind
    for kind in ("server", "image", "volume", "load-balancer", "network"):
        await provider.set_delete_protection(kind, ids[kind], False)
        assert (await _listed(provider, kind, ids[kind])).protected is False
        await deleters[kind](ids[kind])
    assert await provider.list_servers() == [] and await provider.list_volumes() == []


async def test_volumes_are_listed_by_label(provider: HcloudProvider) -> None:
    ours = await _volume(provider, "pvc-a", {"managed-by": "csi-driver", "cluster": "demo"})
    await _volume(provider, "other", {"app": "db"})
    [found] = await provider.list_volumes("managed-by=csi-driver")
    assert (found.id, found.name, found.size, found.location) == (ours, "pvc-a", 10, "fsn1")
    assert found.labels["cluster"] == "demo" and found.server_id is None
    await provider.delete_volume(ours)
    with pytest.raises(NotFoundError):
        await provider.get_volume(ours)


async def test_fake_refuses_to_delete_what_is_protected() -> None:
    fake = FakeHcloud()
    net = await fake.create_network(NetworkSpec("demo", "10.0.0.0/16", LABELS))
    await fake.set_delete_protection("network", net.id, True)
    assert (await fake.list_networks())[0].protected is True
    with pytest.raises(ConflictError) as info:
        await fake.delete_network(net.id)
    assert info.value.context["code"] == "protected"
    await fake.set_delete_protection("network", net.id, False)
    await fake.delete_network(net.id)
    assert fake.mutations() == [
        "create_network",
        "set_delete_protection",
        "delete_network",
        "set_delete_protection",
        "delete_network",
    ]
