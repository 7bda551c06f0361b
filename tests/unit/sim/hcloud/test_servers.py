"""Servers through the official hcloud 2.27 client: lifecycle, actions, locking, rescue, images.

Behaviour sources: openapi.json "Servers" and "Server Actions" (docs.hetzner.cloud#servers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.networks import Network, NetworkSubnet
from hcloud.placement_groups import PlacementGroup
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, ServerCreatePublicNetwork

if TYPE_CHECKING:
    from hk8s.sim.hcloud import HcloudSim, SimEvent, ThreadedSim


def create(client: Client, name: str, **kwargs: object) -> BoundServer:
    kwargs.setdefault("server_type", ServerType(name="cx23"))
    kwargs.setdefault("image", Image(name="debian-12"))
    kwargs.setdefault("location", Location(name="fsn1"))
    result = client.servers.create(name=name, **kwargs)  # type: ignore[arg-type]
    result.action.wait_until_finished()
    for action in result.next_actions:
        action.wait_until_finished()
    return client.servers.get_by_id(result.server.id)


def test_create_returns_initializing_server_with_actions_then_runs(client: Client) -> None:
    # POST /servers: 201 with server (initializing), action create_server, next_actions
    # start_server, and root_password when no SSH key was given.
    result = client.servers.create(
        name="demo-cp-1",
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=Location(name="nbg1"),
        labels={"cluster": "demo", "role": "control-plane"},
    )
    assert result.server.status == "initializing"
    assert result.action.command == "create_server" and result.action.status == "running"
    assert [a.command for a in result.next_actions] == ["start_server"]
    assert result.root_password
    result.action.wait_until_finished()
    for action in result.next_actions:
        action.wait_until_finished()
    server = client.servers.get_by_id(result.server.id)
    assert server.status == "running" and not server.locked
    assert server.public_net.ipv4.ip.startswith("127.1.")
    assert server.server_type.architecture == "x86"
    assert server.image.name == "debian-12" and server.location.name == "nbg1"
    assert server.labels == {"cluster": "demo", "role": "control-plane"}


def test_arm_server_type_gets_the_arm_system_image(client: Client) -> None:
    server = create(client, "arm-1", server_type=ServerType(name="cax11"))
    assert server.image.architecture == "arm" and server.server_type.architecture == "arm"


def test_start_after_create_false_leaves_server_off(client: Client) -> None:
    result = client.servers.create(
        name="off-1",
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        start_after_create=False,
    )
    assert result.next_actions == []
    result.action.wait_until_finished()
    assert client.servers.get_by_id(result.server.id).status == "off"


def test_each_server_gets_a_distinct_loopback_ip_and_private_ip(client: Client) -> None:
    network = client.networks.create(
        name="net",
        ip_range="10.0.0.0/16",
        subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")],
    )
    servers = [create(client, f"n-{i}", networks=[network]) for i in range(3)]
    public = {s.public_net.ipv4.ip for s in servers}
    private = [s.private_net[0].ip for s in servers]
    assert len(public) == 3
    assert private == ["10.0.1.2", "10.0.1.3", "10.0.1.4"]  # .1 is the gateway
    assert client.networks.get_by_id(network.id).servers[0].id == servers[0].id


def test_update_and_delete(client: Client) -> None:
    server = create(client, "upd-1")
    updated = server.update(name="upd-2", labels={"a": "b"})
    assert updated.name == "upd-2" and updated.labels == {"a": "b"}
    server.delete().wait_until_finished()
    with pytest.raises(APIException) as info:
        client.servers.get_by_id(server.id)
    assert info.value.code == "not_found"


def test_power_actions_move_status(client: Client, threaded: ThreadedSim) -> None:
    server = create(client, "pwr-1")
    server.power_off().wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "off"
    server.power_on().wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "running"
    server.reboot().wait_until_finished()
    server.reset().wait_until_finished()
    assert client.servers.get_by_id(server.id).status == "running"


def test_actions_lock_the_server(client: Client) -> None:
    # "423 locked: The item you are trying to access is locked (there is already an Action
    # running)" (docs.hetzner.cloud#errors); GET shows locked: true meanwhile.
    server = create(client, "lock-1")
    action = server.reboot()
    assert client.servers.get_by_id(server.id).locked is True
    with pytest.raises(APIException) as info:
        server.power_off()
    assert info.value.code == "locked"
    action.wait_until_finished()
    assert client.servers.get_by_id(server.id).locked is False


def test_rescue_is_consumed_by_the_next_boot(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    # enable_rescue: "Rescue Mode is automatically disabled when you first boot into it".
    events: list[SimEvent] = []
    threaded.call(lambda: sim.state.subscribe(events.append))
    server = create(client, "rescue-1")
    key = client.ssh_keys.create(
        name="k",
        public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"
        "bV0bN6m3CwZYGvDNYbp0Yy5PhfpQpBTyGFvCxfpD0G test",
    )
    response = server.enable_rescue(ssh_keys=[key.id])
    assert response.root_password
    response.action.wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is True
    server.reset().wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is False
    record = threaded.call(lambda: sim.state.servers[server.id])
    assert record.in_rescue is True and record.rescue_ssh_key_ids == [key.id]
    assert record.rescue_password == response.root_password
    kinds = [e.kind for e in events]
    assert kinds[-3:] == ["rescue_enabled", "server_reset", "server_booted"]
    assert events[-3].details["ssh_keys"][0].id == key.id


def test_create_image_snapshot_carries_disk_metadata(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    def write_disk(event: SimEvent) -> None:
        if event.kind == "image_create_requested" and event.image is not None:
            event.image.metadata["disk"] = "talos-v1.11.0"

    threaded.call(lambda: sim.state.subscribe(write_disk))
    server = create(client, "build-1", server_type=ServerType(name="cax11"))
    result = server.create_image(description="talos", labels={"os": "talos"})
    assert result.image.status == "creating" and result.image.name is None
    result.action.wait_until_finished()
    image = client.images.get_by_id(result.image.id)
    assert image.status == "available" and image.architecture == "arm"
    assert image.created_from.id == server.id and image.labels == {"os": "talos"}
    assert threaded.call(lambda: sim.state.images[image.id].metadata) == {"disk": "talos-v1.11.0"}
    # A server from the snapshot boots with it.
    booted = create(client, "node-1", server_type=ServerType(name="cax21"), image=image)
    assert booted.image.id == image.id
    # An arm snapshot is refused for an x86 server type.
    with pytest.raises(APIException) as info:
        client.servers.create(name="x86-1", server_type=ServerType(name="cx23"), image=image)
    assert info.value.code == "invalid_input"


def test_rebuild_attach_change_type(client: Client) -> None:
    server = create(client, "misc-1")
    rebuilt = server.rebuild(Image(name="ubuntu-24.04"))
    rebuilt.action.wait_until_finished()
    assert client.servers.get_by_id(server.id).image.name == "ubuntu-24.04"
    network = client.networks.create(name="n2", ip_range="10.1.0.0/16")
    subnet = NetworkSubnet(type="cloud", ip_range="10.1.0.0/24", network_zone="eu-central")
    network.add_subnet(subnet).wait_until_finished()
    server.attach_to_network(network, ip="10.1.0.7").wait_until_finished()
    assert client.servers.get_by_id(server.id).private_net[0].ip == "10.1.0.7"
    # change_type needs a stopped server ("server_not_stopped", Server Actions).
    with pytest.raises(APIException) as info:
        server.change_type(ServerType(name="cx33"), upgrade_disk=False)
    assert info.value.code == "server_not_stopped"
    server.power_off().wait_until_finished()
    server.change_type(ServerType(name="cx33"), upgrade_disk=False).wait_until_finished()
    assert client.servers.get_by_id(server.id).server_type.name == "cx33"


def test_placement_group_holds_ten_servers(client: Client) -> None:
    # docs.hetzner.com/cloud/placement-groups/overview#limits: 10 servers per spread group; the
    # API's answer as reported in hetznercloud/terraform-provider-hcloud#1170.
    group = client.placement_groups.create(name="pg", type="spread").placement_group
    for i in range(10):
        client.servers.create(
            name=f"pg-{i}",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            placement_group=group,
        )
    with pytest.raises(APIException) as info:
        client.servers.create(
            name="pg-10",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            placement_group=group,
        )
    assert info.value.code == "placement_group_member_limit_reached"
    assert "contains already 10 servers" in info.value.message
    assert len(client.placement_groups.get_by_id(group.id).servers) == 10
    assert isinstance(group, PlacementGroup)


def test_server_without_public_net_needs_a_network(client: Client) -> None:
    with pytest.raises(APIException) as info:
        client.servers.create(
            name="priv-1",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            public_net=ServerCreatePublicNetwork(enable_ipv4=False, enable_ipv6=False),
        )
    assert info.value.code == "invalid_input"
    assert isinstance(Network, type)


def test_server_type_not_offered_in_location(client: Client) -> None:
    # cx/cax types are EU-only in Hetzner's catalogue.
    with pytest.raises(APIException) as info:
        client.servers.create(
            name="us-1",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            location=Location(name="ash"),
        )
    assert info.value.code == "resource_unavailable"


def test_events_for_power_and_delete(client: Client, sim: HcloudSim, threaded: ThreadedSim) -> None:
    events: list[SimEvent] = []
    threaded.call(lambda: sim.state.subscribe(events.append))
    early = client.servers.create(
        name="gone-early", server_type=ServerType(name="cx23"), image=Image(name="debian-12")
    )
    client.servers.get_by_id(early.server.id).delete().wait_until_finished()
    server = create(client, "ev-1")
    server.power_off().wait_until_finished()
    server.delete().wait_until_finished()
    by_server: dict[str, list[str]] = {}
    for event in events:
        assert event.server is not None
        by_server.setdefault(event.server.name, []).append(event.kind)
    assert by_server["gone-early"] == ["server_created", "server_deleted"]
    assert by_server["ev-1"] == [
        "server_created",
        "server_booted",
        "server_powered_off",
        "server_deleted",
    ]
    assert events[0].image is not None and events[0].image.name == "debian-12"
