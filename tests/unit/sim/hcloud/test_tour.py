"""The remaining endpoints, each called once through hcloud 2.27 so that its responses are
checked against openapi.json by the conftest observer, with the effect a user sees."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerAlgorithm,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetIP,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import NetworkRoute, NetworkSubnet
from hcloud.server_types import ServerType

if TYPE_CHECKING:
    from hcloud.servers import BoundServer

    from hk8s.sim.hcloud import HcloudSim, ThreadedSim


def ready(client: Client, name: str, **kwargs: object) -> BoundServer:
    result = client.servers.create(
        name=name,
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=Location(name="fsn1"),
        **kwargs,  # type: ignore[arg-type]
    )
    for action in [result.action, *result.next_actions]:
        action.wait_until_finished()
    return client.servers.get_by_id(result.server.id)


def test_resource_action_lists(client: Client) -> None:
    # GET /{resource}/actions, /{resource}/actions/{id}, /{resource}/{id}/actions[/{id}]
    server = ready(client, "acts-1")
    reboot = server.reboot()
    reboot.wait_until_finished()
    commands = [a.command for a in server.get_actions(sort=["id:asc"])]
    assert commands == ["create_server", "start_server", "reboot_server"]
    assert [a.id for a in server.get_actions(status=["running"])] == []
    assert client.servers.actions.get_by_id(reboot.id).command == "reboot_server"
    assert {a.command for a in client.servers.actions.get_all()} >= {"reboot_server"}
    network = client.networks.create(name="acts", ip_range="10.0.0.0/16")
    added = network.add_subnet(
        NetworkSubnet(type="cloud", ip_range="10.0.9.0/24", network_zone="eu-central")
    )
    added.wait_until_finished()
    assert [a.command for a in network.get_actions()] == ["add_subnet"]
    assert client.networks.actions.get_by_id(added.id).status == "success"
    assert client.firewalls.actions.get_all() == []
    assert client.load_balancers.actions.get_all() == []
    assert client.primary_ips.actions.get_all() == []
    assert client.images.actions.get_all() == []
    with pytest.raises(APIException) as info:  # a server action is not a network action
        client.networks.actions.get_by_id(reboot.id)
    assert info.value.code == "not_found"


def test_more_server_actions(client: Client, sim: HcloudSim, threaded: ThreadedSim) -> None:
    network = client.networks.create(
        name="more",
        ip_range="10.0.0.0/16",
        subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")],
    )
    server = ready(client, "more-1", networks=[network])
    server.enable_rescue().action.wait_until_finished()
    server.disable_rescue().wait_until_finished()
    assert client.servers.get_by_id(server.id).rescue_enabled is False
    server.detach_from_network(network).wait_until_finished()
    assert client.servers.get_by_id(server.id).private_net == []
    server.change_protection(delete=True, rebuild=True).wait_until_finished()
    with pytest.raises(APIException) as info:
        server.delete()
    assert info.value.code == "protected"
    server.change_protection(delete=False, rebuild=False).wait_until_finished()
    # The guest takes simulated minutes to go off, so a loaded machine cannot finish it
    # before the next request.
    slow = dataclasses.replace(sim.state.durations, shutdown=600.0)
    threaded.call(lambda: setattr(sim.state, "durations", slow))
    server.shutdown().wait_until_finished()  # the ACPI request is sent; "off" comes later
    group = client.placement_groups.create(name="later", type="spread").placement_group
    with pytest.raises(APIException) as info:  # server_not_stopped while it shuts down
        server.add_to_placement_group(group)
    assert info.value.code == "server_not_stopped"
    server.power_off().wait_until_finished()
    server.add_to_placement_group(group).wait_until_finished()
    assert client.servers.get_by_id(server.id).placement_group.id == group.id
    server.remove_from_placement_group().wait_until_finished()
    assert client.servers.get_by_id(server.id).placement_group is None


def test_placement_group_and_key_lifecycle(client: Client) -> None:
    group = client.placement_groups.create(name="pg", type="spread", labels={"a": "1"})
    bound = client.placement_groups.get_by_id(group.placement_group.id)
    assert bound.update(name="pg-2", labels={"a": "2"}).labels == {"a": "2"}
    assert bound.delete() is True
    assert client.placement_groups.get_all() == []
    key = client.ssh_keys.create(
        name="k", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbV0bN6m3CwZYGvDNYbp0Yy5PhfpQpB"
    )
    assert client.ssh_keys.get_by_id(key.id).name == "k"
    assert client.load_balancer_types.get_by_id(1).name == "lb11"
    with pytest.deprecated_call():
        datacenters = client.datacenters
    assert {d.name for d in datacenters.get_all()} >= {"fsn1-dc14", "nbg1-dc3"}
    assert datacenters.get_by_id(4).location.name == "fsn1"


def test_network_subnets_and_routes_removed(client: Client) -> None:
    network = client.networks.create(
        name="rm",
        ip_range="10.0.0.0/16",
        subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")],
    )
    route = NetworkRoute(destination="10.50.0.0/24", gateway="10.0.1.1")
    network.add_route(route).wait_until_finished()
    network.delete_route(route).wait_until_finished()
    server = ready(client, "in-subnet", networks=[network])
    with pytest.raises(APIException):  # subnets with attached resources cannot be deleted
        network.delete_subnet(network.subnets[0])
    server.delete().wait_until_finished()
    network.delete_subnet(network.subnets[0]).wait_until_finished()
    assert client.networks.get_by_id(network.id).subnets == []
    assert [f.name for f in client.firewalls.get_all()] == []


def test_load_balancer_actions(client: Client) -> None:
    network = client.networks.create(
        name="lbn",
        ip_range="10.0.0.0/16",
        subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")],
    )
    server = ready(client, "t-1", labels={"role": "worker"}, networks=[network])
    lb = client.load_balancers.create(
        name="lb",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        services=[LoadBalancerService(protocol="tcp", listen_port=80, destination_port=8080)],
    ).load_balancer
    lb.attach_to_network(network).wait_until_finished()
    lb.add_target(LoadBalancerTarget(type="server", server=server, use_private_ip=True))
    lb.add_target(
        LoadBalancerTarget(
            type="label_selector",
            label_selector=LoadBalancerTargetLabelSelector(selector="role=worker"),
        )
    ).wait_until_finished()
    lb.add_target(LoadBalancerTarget(type="ip", ip=LoadBalancerTargetIP(ip="203.0.113.9")))
    with pytest.raises(APIException) as info:
        lb.add_target(LoadBalancerTarget(type="server", server=server, use_private_ip=True))
    assert info.value.code == "target_already_defined"
    lb.update_service(LoadBalancerService(listen_port=80, destination_port=9090))
    lb.change_algorithm(LoadBalancerAlgorithm(type="least_connections"))
    lb.change_type(LoadBalancerType(name="lb21"))
    lb.change_protection(delete=True).wait_until_finished()
    current = client.load_balancers.get_by_id(lb.id)
    assert current.services[0].destination_port == 9090
    assert current.algorithm.type == "least_connections"
    assert current.load_balancer_type.name == "lb21" and current.protection["delete"] is True
    assert [t.type for t in current.targets] == ["server", "label_selector", "ip"]
    lb.remove_target(LoadBalancerTarget(type="server", server=server)).wait_until_finished()
    lb.detach_from_network(network).wait_until_finished()
    current = client.load_balancers.get_by_id(lb.id)
    assert current.private_net == [] and len(current.targets) == 2
