"""``create``'s delete protection follows the config's ``protection``, idempotently."""

from __future__ import annotations

from typing import Any

from hk8s.config import parse_config
from hk8s.controller import RecordingReporter
from hk8s.controller.create._protection import converge_delete_protection
from hk8s.model.resources import (
    FirewallSpec,
    LoadBalancerSpec,
    NetworkSpec,
    Server,
    ServerSpec,
)
from hk8s.providers.hcloud.fake import FakeHcloud


def owned(component: str | None = None, **extra: str) -> dict[str, str]:
    labels = {"cluster": "demo", "managed-by": "hk8s", **extra}
    return {**labels, "component": component} if component else labels


def config(protection: bool) -> Any:
    text = f"name: demo\nlocation: fsn1\nprotection: {str(protection).lower()}\n"
    return parse_config(text, source="cluster.yaml")


async def project() -> FakeHcloud:
    """demo's servers, API load balancer, network and firewall, plus look-alikes of others."""
    fake = FakeHcloud()
    await fake.create_network(NetworkSpec("demo", "10.0.0.0/16", owned("network")))
    await fake.create_network(NetworkSpec("prod", "10.1.0.0/16", {"cluster": "prod"}))
    await fake.create_firewall(FirewallSpec("demo-fw", owned("firewall"), ()))
    await fake.create_load_balancer(
        LoadBalancerSpec("demo-api", "lb11", "fsn1", owned("load-balancer"))
    )
    for n in (1, 2, 3):
        spec = ServerSpec(f"demo-cp-{n}", "cx23", 7, "fsn1", owned(role="control-plane"))
        await fake.create_server(spec)
    await fake.create_server(ServerSpec("demo-cp-9", "cx23", 7, "fsn1", {"cluster": "demo"}))
    fake.calls.clear()
    return fake


def servers(fake: FakeHcloud) -> list[Server]:
    return list(fake.servers.values())


def protected(fake: FakeHcloud) -> list[str]:
    stores: list[Any] = [fake.servers, fake.load_balancers, fake.networks]
    return sorted(r.name for store in stores for r in store.values() if r.protected)


async def test_protection_true_protects_servers_lb_and_network_once() -> None:
    fake = await project()
    reporter = RecordingReporter()
    keep = {"demo-cp-1", "demo-cp-2", "demo-cp-3"}
    changes = await converge_delete_protection(
        fake, config(True), servers(fake), keep=keep, reporter=reporter
    )
    assert sorted(map(str, changes)) == [
        "load-balancer demo-api",
        "network demo",
        "server demo-cp-1",
        "server demo-cp-2",
        "server demo-cp-3",
    ]
    # Not the server without managed-by=hk8s, nor another cluster's network.
    assert protected(fake) == ["demo", "demo-api", "demo-cp-1", "demo-cp-2", "demo-cp-3"]
    assert any("delete protection on: server demo-cp-1" in e.title for e in reporter.events)

    fake.calls.clear()
    again = await converge_delete_protection(fake, config(True), servers(fake), keep=keep)
    assert again == [] and fake.mutations() == []


async def test_protection_false_lifts_it_and_a_removed_server_is_never_protected() -> None:
    fake = await project()
    all_three = {"demo-cp-1", "demo-cp-2", "demo-cp-3"}
    await converge_delete_protection(fake, config(True), servers(fake), keep=all_three)
    # Scale-down to two: the third is about to be removed, so its protection goes.
    fake.calls.clear()
    changes = await converge_delete_protection(
        fake, config(True), servers(fake), keep={"demo-cp-1", "demo-cp-2"}
    )
    assert [(str(c), c.protected) for c in changes] == [("server demo-cp-3", False)]
    assert fake.mutations() == ["set_delete_protection"]

    lifted = await converge_delete_protection(fake, config(False), servers(fake), keep=all_three)
    assert all(not c.protected for c in lifted) and len(lifted) == 4
    assert protected(fake) == []


async def test_protection_false_on_an_unprotected_cluster_changes_nothing() -> None:
    fake = await project()
    keep = {"demo-cp-1"}
    assert await converge_delete_protection(fake, config(False), servers(fake), keep=keep) == []
    assert fake.mutations() == []
