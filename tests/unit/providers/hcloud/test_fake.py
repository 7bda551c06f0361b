"""The in-memory fake behaves like the API where the controller's tests rely on it."""

from __future__ import annotations

import pytest

from hk8s.errors import ConflictError, NotFoundError, TransientAPIError
from hk8s.model.resources import NetworkSpec, PlacementGroupSpec, ServerSpec
from hk8s.providers.hcloud.fake import FakeHcloud

LABELS = {"cluster": "demo", "managed-by": "hk8s"}


async def test_label_selectors_use_the_hetzner_grammar() -> None:
    fake = FakeHcloud()
    await fake.create_network(NetworkSpec("a", "10.0.0.0/16", {**LABELS, "component": "network"}))
    await fake.create_network(NetworkSpec("b", "10.1.0.0/16", {"cluster": "other"}))
    assert [n.name for n in await fake.list_networks("cluster=demo,managed-by=hk8s")] == ["a"]
    assert [n.name for n in await fake.list_networks("cluster in (demo,other)")] == ["a", "b"]
    assert [n.name for n in await fake.list_networks("!managed-by")] == ["b"]
    assert [n.name for n in await fake.list_networks(name="b")] == ["b"]


async def test_names_are_unique_and_unknown_ids_not_found() -> None:
    fake = FakeHcloud()
    await fake.create_network(NetworkSpec("a", "10.0.0.0/16", {}))
    with pytest.raises(ConflictError) as info:
        await fake.create_network(NetworkSpec("a", "10.0.0.0/16", {}))
    assert info.value.context["code"] == "uniqueness_error"
    with pytest.raises(NotFoundError):
        await fake.delete_network(42)


async def test_faults_before_and_after_the_change() -> None:
    fake = FakeHcloud()
    fake.fail("create_network", TransientAPIError("before"))
    with pytest.raises(TransientAPIError):
        await fake.create_network(NetworkSpec("a", "10.0.0.0/16", {}))
    assert fake.networks == {}
    fake.fail("create_network", TransientAPIError("after"), after=True)
    with pytest.raises(TransientAPIError):
        await fake.create_network(NetworkSpec("a", "10.0.0.0/16", {}))
    assert [n.name for n in fake.networks.values()] == ["a"]
    assert fake.mutations() == ["create_network", "create_network"]


async def test_placement_groups_track_their_servers() -> None:
    fake = FakeHcloud()
    group = await fake.create_placement_group(PlacementGroupSpec("pg", LABELS))
    server = await fake.create_server(
        ServerSpec("demo-cp-1", "cx23", 1, "fsn1", LABELS, placement_group_id=group.id)
    )
    assert fake.placement_groups[group.id].server_ids == (server.id,)
    with pytest.raises(ConflictError):
        await fake.delete_placement_group(group.id)
    await fake.delete_server(server.id)
    await fake.delete_placement_group(group.id)
    assert fake.placement_groups == {}
