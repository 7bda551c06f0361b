"""Every other resource through the hcloud 2.27 client: create, list, get, update, delete.

Behaviour sources: openapi.json tags Networks, Firewalls, Load Balancers, Placement Groups,
SSH Keys, Primary IPs, Images, Locations, Server Types, Load Balancer Types, Actions.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import pytest
from hcloud import APIException, Client
from hcloud.firewalls import (
    FirewallResource,
    FirewallResourceLabelSelector,
    FirewallRule,
)
from hcloud.images import Image
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerHealthCheck,
    LoadBalancerService,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.networks import NetworkSubnet
from hcloud.server_types import ServerType

if TYPE_CHECKING:
    from hk8s.sim.hcloud import HcloudSim, ThreadedSim

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbV0bN6m3CwZYGvDNYbp0Yy5PhfpQpBTyGFvCxfpD0G me"


def server(client: Client, name: str, labels: dict[str, str], **kwargs: object) -> int:
    result = client.servers.create(
        name=name,
        server_type=ServerType(name="cx23"),
        image=Image(name="debian-12"),
        location=Location(name="fsn1"),
        labels=labels,
        **kwargs,  # type: ignore[arg-type]
    )
    for action in [result.action, *result.next_actions]:
        action.wait_until_finished()
    assert result.server.id is not None
    return result.server.id


def test_catalogue(client: Client) -> None:
    types = {t.name: t for t in client.server_types.get_all()}
    assert {"cx23", "cpx11", "cpx51", "cax11", "cax41", "ccx13"} <= set(types)
    assert types["cax21"].architecture == "arm" and types["cpx31"].architecture == "x86"
    assert {loc.location.name for loc in types["cpx11"].locations} >= {"fsn1", "ash", "sin"}
    assert "ash" not in {loc.location.name for loc in types["cx23"].locations}
    assert client.locations.get_by_name("hel1").network_zone == "eu-central"
    assert client.load_balancer_types.get_by_name("lb11").max_targets == 25
    fsn1 = client.locations.get_by_name("fsn1")
    assert client.locations.get_by_id(fsn1.id).name == "fsn1"
    with pytest.raises(APIException):
        client.server_types.get_by_id(424242)


def test_catalogue_is_todays_with_per_location_deprecations(client: Client) -> None:
    """December 2026 (sources in hk8s/sim/hcloud/_catalog.py): cx22..cx52 are gone, their
    successors sold in the EU only; first-generation CPX is past its date outside the US;
    second-generation CPX is not sold in the US; CAX in Germany and Finland."""
    types = {t.name: t for t in client.server_types.get_all()}
    assert not {"cx22", "cx32", "cx42", "cx52"} & set(types)
    assert {"cx23", "cx33", "cx43", "cx53", "cpx12", "cpx62", "ccx63"} <= set(types)

    def per_location(name: str) -> dict[str, Any]:
        return {loc.location.name: loc for loc in types[name].locations}

    cpx11 = per_location("cpx11")
    assert not cpx11["nbg1"].available and not cpx11["sin"].available
    assert cpx11["nbg1"].deprecation.unavailable_after.isoformat() == "2025-12-31T00:00:00+00:00"
    assert cpx11["nbg1"].deprecation.announced.isoformat() == "2025-10-16T00:00:00+00:00"
    assert cpx11["ash"].available and cpx11["ash"].deprecation is None
    [raw] = client.request("GET", "/server_types", params={"name": "cpx11"})["server_types"]
    assert (raw["deprecated"], raw["deprecation"]) == (False, None)  # not in every location
    assert set(per_location("cpx22")) == {"fsn1", "nbg1", "hel1", "sin"}
    assert set(per_location("cax11")) == set(per_location("cx23")) == {"fsn1", "nbg1", "hel1"}
    assert not per_location("cx43")["nbg1"].available  # sold out there


def test_servers_of_a_type_not_orderable_there_are_refused(client: Client) -> None:
    with pytest.raises(APIException) as info:
        client.servers.create(
            name="old", server_type=ServerType(name="cpx11"), image=Image(name="debian-12"),
            location=Location(name="nbg1"),
        )  # fmt: skip
    assert info.value.code == "resource_unavailable"
    with pytest.raises(APIException) as gone:
        client.servers.create(
            name="gone", server_type=ServerType(name="cx22"), image=Image(name="debian-12")
        )
    assert gone.value.code == "invalid_input"
    result = client.servers.create(
        name="us", server_type=ServerType(name="cpx11"), image=Image(name="debian-12"),
        location=Location(name="ash"),
    )  # fmt: skip
    assert result.server.id is not None
    # no location asked for: placed where the type is still sold
    anywhere = client.servers.create(
        name="any", server_type=ServerType(name="cpx21"), image=Image(name="debian-12")
    )
    assert anywhere.server.location.name == "ash"


def test_injected_sell_outs_show_as_unavailable_and_refuse_servers(
    threaded: ThreadedSim, sim: HcloudSim, client: Client
) -> None:
    from hk8s.sim.hcloud import FaultSpec

    spec = FaultSpec.parse({"sold_out": ["cx23@fsn1", "cax*@*"]})
    threaded.call(lambda: sim.set_faults(spec))
    types = {t.name: t for t in client.server_types.get_all()}
    where = {loc.location.name: loc.available for loc in types["cx23"].locations}
    assert where == {"fsn1": False, "nbg1": True, "hel1": True}
    assert not any(loc.available for loc in types["cax41"].locations)
    with pytest.raises(APIException) as info:
        server(client, "x", {})  # cx23 in fsn1
    assert info.value.code == "resource_unavailable"
    made = client.servers.create(
        name="y", server_type=ServerType(name="cx23"), image=Image(name="debian-12"),
        location=Location(name="nbg1"),
    )  # fmt: skip
    assert made.server.id is not None


def test_ssh_keys_crud(client: Client) -> None:
    key = client.ssh_keys.create(name="build", public_key=KEY, labels={"tmp": "yes"})
    assert key.fingerprint.count(":") == 15
    assert client.ssh_keys.get_by_fingerprint(key.fingerprint).id == key.id
    assert [k.name for k in client.ssh_keys.get_all(label_selector="tmp")] == ["build"]
    assert key.update(name="build-2").name == "build-2"
    key.delete()
    assert client.ssh_keys.get_all() == []
    with pytest.raises(APIException) as info:
        client.ssh_keys.create(name="bad", public_key="not a key")
    assert info.value.code == "invalid_input"


def test_networks_and_subnets(client: Client) -> None:
    result = client.networks.create(name="demo", ip_range="10.0.0.0/16", labels={"cluster": "d"})
    network = client.networks.get_by_id(result.id)
    network.add_subnet(
        NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")
    ).wait_until_finished()
    with pytest.raises(APIException) as info:  # overlapping subnet
        network.add_subnet(
            NetworkSubnet(type="cloud", ip_range="10.0.1.0/25", network_zone="eu-central")
        )
    assert info.value.code == "invalid_input"
    network = client.networks.get_by_id(network.id)
    assert [s.ip_range for s in network.subnets] == ["10.0.1.0/24"]
    assert network.subnets[0].gateway == "10.0.0.1"
    assert client.networks.get_all(label_selector="cluster=d")[0].id == network.id
    assert network.update(labels={"cluster": "e"}).labels == {"cluster": "e"}
    with pytest.raises(APIException):
        client.networks.create(name="public", ip_range="8.8.0.0/16")
    network.delete()
    assert client.networks.get_all() == []


def test_firewall_rules_and_label_selector_application(client: Client) -> None:
    # apply_to label selectors apply to every matching server, now and later
    # (POST /firewalls/{id}/actions/apply_to_resources).
    rules = [
        FirewallRule(direction="in", protocol="tcp", port="6443", source_ips=["203.0.113.7/32"]),
        FirewallRule(direction="in", protocol="icmp", source_ips=["0.0.0.0/0", "::/0"]),
    ]
    created = client.firewalls.create(
        name="demo-fw",
        rules=rules,
        labels={"cluster": "demo"},
        resources=[
            FirewallResource(
                type="label_selector",
                label_selector=FirewallResourceLabelSelector(selector="cluster=demo"),
            )
        ],
    )
    fw = created.firewall
    for action in created.actions or []:
        action.wait_until_finished()
    node = server(client, "demo-cp-1", {"cluster": "demo"})
    other = server(client, "other-1", {"cluster": "other"})
    assert [f.firewall.id for f in client.servers.get_by_id(node).public_net.firewalls] == [fw.id]
    assert client.servers.get_by_id(other).public_net.firewalls == []
    fw = client.firewalls.get_by_id(fw.id)
    applied = fw.applied_to[0].applied_to_resources
    assert [r.server.id for r in applied or []] == [node]
    assert [r.port for r in fw.rules] == ["6443", None]
    for action in fw.set_rules([rules[0]]):
        action.wait_until_finished()
    assert len(client.firewalls.get_by_id(fw.id).rules) == 1
    with pytest.raises(APIException) as info:
        fw.set_rules([FirewallRule(direction="in", protocol="tcp", source_ips=["1.2.3.4/32"])])
    assert info.value.code == "invalid_input"  # tcp needs a port
    direct = FirewallResource(type="server", server=client.servers.get_by_id(other))
    applying = fw.apply_to_resources([direct])
    assert client.servers.get_by_id(other).public_net.firewalls[0].status == "pending"
    for action in applying:
        action.wait_until_finished()
    assert client.servers.get_by_id(other).public_net.firewalls[0].status == "applied"
    assert client.servers.get_by_id(other).public_net.firewalls[0].firewall.id == fw.id
    with pytest.raises(APIException) as info:  # still applied (Firewalls: resource_in_use)
        fw.delete()
    assert info.value.code == "resource_in_use"
    by_selector = FirewallResource(type="server", server=client.servers.get_by_id(node))
    with pytest.raises(APIException) as info:  # it has the firewall through the selector
        fw.remove_from_resources([by_selector])
    assert info.value.code == "firewall_managed_by_label_selector"
    fw.remove_from_resources([direct, created.firewall.applied_to[0]])
    client.servers.get_by_id(node).delete()
    assert fw.update(name="demo-fw-2").name == "demo-fw-2"
    assert fw.delete() is True


def test_primary_ips(client: Client) -> None:
    created = client.primary_ips.create(
        type="ipv4", name="ip-1", location=Location(name="fsn1"), labels={"a": "b"}
    )
    pip = created.primary_ip
    assert pip.ip.startswith("127.1.") and pip.assignee_id is None
    assert client.primary_ips.get_by_name("ip-1").id == pip.id
    assert pip.update(auto_delete=True).auto_delete is True
    sid = server(client, "with-ip", {}, public_net=None)
    auto = client.servers.get_by_id(sid).public_net.primary_ipv4
    assert auto is not None and auto.assignee_id == sid
    pip.delete()
    assert client.primary_ips.get_all(label_selector="a=b") == []


def test_images_update_protect_delete(client: Client) -> None:
    sid = server(client, "snap-src", {})
    result = client.servers.get_by_id(sid).create_image(description="v1", labels={"os": "talos"})
    result.action.wait_until_finished()
    image = client.images.get_by_id(result.image.id)
    image.update(description="v2", labels={"os": "talos", "arch": "amd64"})
    assert client.images.get_all(label_selector="os=talos,arch=amd64")[0].description == "v2"
    image.change_protection(delete=True).wait_until_finished()
    with pytest.raises(APIException) as info:
        image.delete()
    assert info.value.code == "protected"
    image.change_protection(delete=False).wait_until_finished()
    assert [a.command for a in image.get_actions()] == ["create_image", *["change_protection"] * 2]
    assert image.delete() is True
    system = client.images.get_by_name_and_architecture("debian-12", "x86")
    with pytest.raises(APIException):
        system.delete()


def test_load_balancer_targets_services_and_network(client: Client) -> None:
    network = client.networks.create(
        name="lbnet",
        ip_range="10.0.0.0/16",
        subnets=[NetworkSubnet(type="cloud", ip_range="10.0.1.0/24", network_zone="eu-central")],
    )
    node = server(client, "demo-cp-1", {"role": "control-plane"}, networks=[network])
    created = client.load_balancers.create(
        name="demo-api",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        network=network,
        labels={"cluster": "demo"},
        services=[LoadBalancerService(protocol="tcp", listen_port=6443, destination_port=6443)],
        targets=[
            LoadBalancerTarget(
                type="label_selector",
                label_selector=LoadBalancerTargetLabelSelector(selector="role=control-plane"),
                use_private_ip=True,
            )
        ],
    )
    created.action.wait_until_finished()
    lb = client.load_balancers.get_by_id(created.load_balancer.id)
    assert lb.public_net.ipv4.ip.startswith("127.2.")
    assert lb.private_net[0].ip == "10.0.1.3"
    target = lb.targets[0]
    assert target.use_private_ip is True
    assert [t.server.id for t in target.targets or []] == [node]
    lb.add_service(
        LoadBalancerService(
            protocol="tcp",
            listen_port=50000,
            destination_port=50000,
            proxyprotocol=False,
            health_check=LoadBalancerHealthCheck(
                protocol="tcp", port=50000, interval=5, timeout=3, retries=2
            ),
        )
    ).wait_until_finished()
    with pytest.raises(APIException) as info:
        lb.add_service(LoadBalancerService(protocol="tcp", listen_port=6443, destination_port=1))
    assert info.value.code == "source_port_already_used"
    lb.delete_service(LoadBalancerService(listen_port=50000)).wait_until_finished()
    assert [s.listen_port for s in client.load_balancers.get_by_id(lb.id).services] == [6443]
    assert lb.update(name="demo-api-2").name == "demo-api-2"
    # hcloud 2.27 expects the delete action (see conftest DEVIATIONS).
    assert lb.delete().action.command == "delete_load_balancer"
    assert client.load_balancers.get_all() == []


def test_load_balancer_health_and_forwarding(
    client: Client, sim: HcloudSim, threaded: ThreadedSim
) -> None:
    sid = server(client, "web-1", {"app": "web"})
    ip = client.servers.get_by_id(sid).public_net.ipv4.ip
    created = client.load_balancers.create(
        name="web",
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        services=[LoadBalancerService(protocol="tcp", listen_port=18080, destination_port=18080)],
        targets=[LoadBalancerTarget(type="server", server=client.servers.get_by_id(sid))],
    )
    lb_id = created.load_balancer.id

    def health() -> str:
        lb = client.load_balancers.get_by_id(lb_id)
        return lb.targets[0].health_status[0].status

    threaded.run(sim.load_balancers.reconcile())
    assert health() == "unhealthy"  # nothing listens on the target yet

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello from web-1")
        await writer.drain()
        writer.close()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))  # echo once, then keep the connection open
        await writer.drain()
        await reader.read(100)

    listener = threaded.run(asyncio.start_server(backend, ip, 18080))
    try:
        threaded.run(sim.load_balancers.reconcile())
        assert health() == "healthy"
        lb_ip = created.load_balancer.public_net.ipv4.ip
        with socket.create_connection((lb_ip, 18080), timeout=5) as conn:
            assert conn.recv(100) == b"hello from web-1"
        # Established connections end when the simulator's load balancers stop.
        held = threaded.run(asyncio.start_server(hold, ip, 18081))
        service = threaded.call(lambda: sim.state.load_balancers[lb_id].services[0])
        threaded.call(lambda: setattr(service, "destination_port", 18081))
        with socket.create_connection((lb_ip, 18080), timeout=5) as conn:
            conn.sendall(b"ping")
            assert conn.recv(100) == b"ping"
            threaded.run(sim.load_balancers.close())
            assert conn.recv(100) == b""
        held.close()
    finally:
        listener.close()


def test_primary_ip_assign_needs_a_stopped_server(client: Client) -> None:
    # Primary IP Actions assign/unassign: "server_not_stopped" unless the server is off.
    sid = server(client, "pip-1", {})
    bound = client.servers.get_by_id(sid)
    auto = bound.public_net.primary_ipv4
    assert auto is not None
    with pytest.raises(APIException) as info:
        auto.unassign()
    assert info.value.code == "server_not_stopped"
    bound.power_off().wait_until_finished()
    auto.unassign().wait_until_finished()
    assert client.servers.get_by_id(sid).public_net.ipv4 is None
    spare = client.primary_ips.create(type="ipv4", name="spare", location=Location(name="fsn1"))
    spare.primary_ip.assign(assignee_id=sid, assignee_type="server").wait_until_finished()
    assert client.servers.get_by_id(sid).public_net.ipv4.ip == spare.primary_ip.ip
    spare.primary_ip.change_protection(delete=True).wait_until_finished()
    with pytest.raises(APIException) as info:
        spare.primary_ip.delete()
    assert info.value.code == "protected"


def test_network_range_grows_only_and_lb_public_interface(client: Client) -> None:
    network = client.networks.create(name="grow", ip_range="10.0.0.0/16")
    network.change_ip_range("10.0.0.0/8").wait_until_finished()
    assert client.networks.get_by_id(network.id).ip_range == "10.0.0.0/8"
    with pytest.raises(APIException) as info:
        network.change_ip_range("10.0.0.0/24")
    assert info.value.code == "invalid_input"
    lb = client.load_balancers.create(
        name="int", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="hel1")
    ).load_balancer
    with pytest.raises(APIException) as info:
        lb.disable_public_interface()
    assert info.value.code == "load_balancer_not_attached_to_network"
    lb.enable_public_interface().wait_until_finished()
    assert client.load_balancers.get_by_id(lb.id).public_net.enabled is True
