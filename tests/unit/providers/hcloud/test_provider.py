"""HcloudProvider against the simulated API, with the real hcloud 2.27 library underneath."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from hk8s.errors import AuthError, ConflictError, NotFoundError, TransientAPIError
from hk8s.model import Timing, changes
from hk8s.model.resources import (
    FirewallRule,
    FirewallSpec,
    LBService,
    LBTarget,
    LoadBalancerSpec,
    NetworkSpec,
    PlacementGroupSpec,
    ServerSpec,
    Subnet,
)
from hk8s.providers.hcloud import HcloudProvider
from hk8s.sim.hcloud import FaultSpec

LABELS = {"cluster": "demo", "managed-by": "hk8s"}


def faults(*errors: dict[str, object], seed: int = 1) -> FaultSpec:
    return FaultSpec.parse({"seed": seed, "errors": list(errors)})


def net_spec(name: str = "demo", subnets: tuple[Subnet, ...] = ()) -> NetworkSpec:
    return NetworkSpec(name, "10.0.0.0/16", {**LABELS, "component": "network"}, subnets)


async def test_every_request_goes_through_the_adapter(sim, provider) -> None:  # type: ignore[no-untyped-def]
    await provider.list_networks("cluster=demo")
    await provider.list_firewalls()
    assert provider.adapter.sent == sim.stats.total == 2
    assert provider.limiter.remaining is not None  # headers were read


async def test_infra_round_trip_in_model_types(sim, provider) -> None:  # type: ignore[no-untyped-def]
    net = await provider.create_network(net_spec(subnets=(Subnet("10.0.1.0/24", "eu-central"),)))
    assert [(s.ip_range, s.network_zone, s.type) for s in net.subnets] == [
        ("10.0.1.0/24", "eu-central", "cloud")
    ]
    rule = FirewallRule("in", "tcp", "6443", ("203.0.113.7/32",), description="api")
    fw = await provider.create_firewall(
        FirewallSpec("demo-fw", LABELS, (rule,), ("cluster=demo,managed-by=hk8s",))
    )
    assert fw.rules == (rule,)
    assert fw.applied_selectors == ("cluster=demo,managed-by=hk8s",)
    group = await provider.create_placement_group(PlacementGroupSpec("demo-cp-pg-1", LABELS))
    assert (group.type, group.server_ids) == ("spread", ())
    service = LBService("tcp", 6443, 6443)
    target = LBTarget("label_selector", "cluster=demo,role=control-plane", use_private_ip=True)
    lb = await provider.create_load_balancer(
        LoadBalancerSpec("demo-api", "lb11", "fsn1", LABELS, net.id, (service,), (target,))
    )
    # The create answer is the load balancer as created: no GET after it (#17).
    assert sim.stats.count("GET", "/load_balancers/{id}") == 0
    assert (lb.type, lb.location) == ("lb11", "fsn1")
    assert [p.network_id for p in lb.private_ips] == [net.id]
    assert lb.services == (service,)
    assert lb.targets == (target,)
    assert lb.public_ipv4
    [found] = await provider.list_load_balancers("cluster=demo,managed-by=hk8s")
    assert found == lb
    assert await provider.list_networks("cluster=other") == []
    new_rule = FirewallRule("in", "tcp", "50000", ("198.51.100.0/24",))
    fw = await provider.set_firewall_rules(fw.id, [new_rule])
    assert fw.rules == (new_rule,)
    await provider.set_labels("network", net.id, {**net.labels, "extra": "yes"})
    [net] = await provider.list_networks("extra=yes")
    await provider.delete_load_balancer(lb.id)  # hcloud 2.27 alone raises KeyError on the 204
    assert await provider.list_load_balancers() == []
    await provider.delete_placement_group(group.id)
    await provider.delete_firewall(fw.id)
    await provider.delete_network(net.id)
    assert await provider.list_networks() == []


async def test_api_errors_become_hk8s_errors(sim, provider) -> None:  # type: ignore[no-untyped-def]
    await provider.create_network(net_spec())
    with pytest.raises(ConflictError) as info:
        await provider.create_network(net_spec())
    assert info.value.context["code"] == "uniqueness_error"
    with pytest.raises(NotFoundError):
        await provider.delete_network(999_999)


async def test_changes_are_counted_only_when_made(sim, provider) -> None:  # type: ignore[no-untyped-def]
    changes.reset()
    await provider.list_networks()
    assert changes.made() == 0, "a read is no change"
    await provider.create_network(net_spec())
    assert changes.made() == 1
    with pytest.raises(ConflictError):
        await provider.create_network(net_spec())  # refused (422): nothing changed
    with pytest.raises(NotFoundError):
        await provider.delete_network(999_999)
    assert changes.made() == 1
    assert changes.describe() == "1 Hetzner API change(s)"


async def test_bad_token_is_an_auth_error_without_the_token(sim, provider) -> None:  # type: ignore[no-untyped-def]
    bad = "wrong-" + sim.token
    other = HcloudProvider(bad, endpoint=sim.endpoint, clock=provider.clock, timing=provider.timing)
    with pytest.raises(AuthError) as info:
        await other.list_networks()
    other.close()
    assert bad not in str(info.value) and sim.token not in str(info.value)


async def test_injected_5xx_and_locked_are_retried(sim, provider) -> None:  # type: ignore[no-untyped-def]
    sim.set_faults(
        faults(
            {"method": "POST", "path": "/networks", "code": 503, "limit": 2},
            {"method": "POST", "path": "/networks/*/actions/*", "code": "locked", "limit": 2},
        )
    )
    net = await provider.create_network(net_spec())
    net = await provider.add_subnet(net.id, Subnet("10.0.1.0/24", "eu-central"))
    assert [s.ip_range for s in net.subnets] == ["10.0.1.0/24"]
    assert sim.stats.by_status[503] == 2
    assert sim.stats.by_status[423] == 2
    assert sim.stats.count("POST", "/networks") == 3


async def test_retries_run_out_with_a_transient_error(sim, provider) -> None:  # type: ignore[no-untyped-def]
    sim.set_faults(faults({"method": "GET", "path": "/networks", "code": 500}))
    with pytest.raises(TransientAPIError, match="after 8 attempts") as info:
        await provider.list_networks()
    assert sim.token not in str(info.value)
    assert sim.stats.count("GET", "/networks") == provider.timing.retry_attempts


async def test_429_makes_everybody_wait_instead_of_storming(sim, provider) -> None:  # type: ignore[no-untyped-def]
    sim.api.limiter.set_remaining(3)
    results = await asyncio.gather(*(provider.list_networks() for _ in range(20)))
    assert all(r == [] for r in results)
    # The shared limiter paced the calls at the refill rate once the bucket ran low: at most
    # a couple of requests raced into an empty bucket.
    assert sim.stats.rate_limited <= 2
    assert provider.limiter.waited > 0


async def test_injected_429_is_retried(sim, provider) -> None:  # type: ignore[no-untyped-def]
    sim.set_faults(faults({"method": "GET", "path": "/firewalls", "code": 429, "limit": 3}))
    assert await provider.list_firewalls() == []
    assert sim.stats.rate_limited == 3
    assert provider.limiter.throttled == 3


async def test_actions_are_polled_in_batches_of_at_most_25(sim, provider) -> None:  # type: ignore[no-untyped-def]
    batches: list[list[str]] = []

    def observe(record, request, response) -> None:  # type: ignore[no-untyped-def]
        if record.method == "GET" and record.route == "/actions":
            batches.append(request.params("id"))

    sim.api.observers.append(observe)
    nets = await asyncio.gather(*(provider.create_network(net_spec(f"n{i}")) for i in range(30)))
    await asyncio.gather(
        *(provider.add_subnet(n.id, Subnet("10.0.1.0/24", "eu-central")) for n in nets)
    )
    assert batches, "actions were polled"
    assert max(len(b) for b in batches) <= 25
    assert max(len(b) for b in batches) > 1  # really batched
    # Far fewer polls than actions (one GET per action per interval would be 30+).
    assert len(batches) < 30


async def test_image_status_filter_works_despite_the_library_bug(sim, provider) -> None:  # type: ignore[no-untyped-def]
    images = await provider.list_images(type="system", status="available")
    assert images and all(i.status == "available" and i.type == "system" for i in images)
    arm = await provider.list_images(type="system", architecture="arm")
    assert arm and all(i.architecture == "arm" for i in arm)


class FirstRequestSlow:
    """Wraps the simulator's fault injector: the first request takes 300 simulated seconds."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.slowed = 0

    def latency(self, method: str, path: str, route: str) -> float:
        if self.slowed == 0:
            self.slowed += 1
            return 300.0
        return 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_slow_answers_time_out_and_are_retried(sim, provider) -> None:  # type: ignore[no-untyped-def]
    # 300 simulated seconds at speed 50 = 6 s of wall time, beyond the 2 s floor of the
    # request timeout; the second attempt is answered at once.
    sim.state.faults = FirstRequestSlow(sim.state.faults)
    assert await provider.list_networks() == []
    assert provider.adapter.timeout == 2.0
    assert provider.adapter.sent == 2


async def test_unreachable_endpoint_is_a_transient_error(sim) -> None:  # type: ignore[no-untyped-def]
    timing = dataclasses.replace(Timing().scaled(50.0), retry_attempts=2)
    provider = HcloudProvider("t0ken", endpoint="http://127.0.0.1:9/v1", timing=timing)
    try:
        with pytest.raises(TransientAPIError, match="ConnectionError after 2 attempts") as info:
            await provider.list_networks()
    finally:
        provider.close()
    assert "t0ken" not in str(info.value)


def test_endpoint_comes_from_hcloud_endpoint(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HCLOUD_ENDPOINT", "http://127.0.0.1:1/v1/")
    provider = HcloudProvider("token")
    assert provider.endpoint == "http://127.0.0.1:1/v1"
    provider.close()
    monkeypatch.delenv("HCLOUD_ENDPOINT")
    provider = HcloudProvider("token")
    assert provider.endpoint == "https://api.hetzner.cloud/v1"
    provider.close()


def test_missing_token_is_refused() -> None:
    with pytest.raises(AuthError, match="no Hetzner Cloud API token") as info:
        HcloudProvider("")
    assert info.value.hint is not None and "HCLOUD_TOKEN" in info.value.hint


async def test_server_lifecycle_in_model_types(sim, provider) -> None:  # type: ignore[no-untyped-def]
    from hk8s.model.resources import ServerSpec, SSHKeySpec

    key = await provider.create_ssh_key(
        SSHKeySpec(
            "demo-build", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZha2VrZXlmb3J0ZXN0cw== t", LABELS
        )
    )
    assert key.labels == LABELS and key.fingerprint
    net = await provider.create_network(net_spec(subnets=(Subnet("10.0.1.0/24", "eu-central"),)))
    group = await provider.create_placement_group(PlacementGroupSpec("demo-cp-pg-1", LABELS))
    spec = ServerSpec(
        "demo-cp-1",
        "cx23",
        "ubuntu-24.04",
        "fsn1",
        {**LABELS, "role": "control-plane"},
        network_ids=(net.id,),
        placement_group_id=group.id,
        ssh_key_ids=(key.id,),
        start_after_create=False,
    )
    server = await provider.create_server(spec)
    assert (server.name, server.server_type, server.location) == ("demo-cp-1", "cx23", "fsn1")
    assert [p.network_id for p in server.private_ips] == [net.id]
    assert server.placement_group_id == group.id
    assert server.public_ipv4
    password = await provider.enable_rescue(server.id, [key.id])
    assert password
    await provider.power_on(server.id)
    [found] = await provider.list_servers("role=control-plane")
    assert found.rescue_enabled or found.status == "running"
    await provider.power_off(server.id)
    image = await provider.create_snapshot(server.id, "talos test", {"os": "talos", **LABELS})
    assert (image.type, image.labels["os"]) == ("snapshot", "talos")
    [listed] = await provider.list_images("os=talos", type="snapshot", architecture="x86")
    assert listed.id == image.id
    types = {t.name: t for t in await provider.server_types()}
    assert types["cax11"].architecture == "arm" and "fsn1" in types["cax11"].location_names
    await provider.delete_server(server.id)
    await provider.delete_ssh_key(key.id)
    await provider.delete_image(image.id)
    assert await provider.list_servers() == []


async def test_the_catalogue_keeps_per_location_deprecation_availability_and_price(
    sim, provider
) -> None:  # type: ignore[no-untyped-def]
    """What the API says per location reaches the model: cpx11 is past its date in nbg1 and
    still sold in ash; cx43 is sold out in nbg1; cx22 is gone. One request per list, however
    often it is read in a run."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    types = {t.name: t for t in await provider.server_types()}
    assert "cx22" not in types and "cx23" in types
    nbg1 = types["cpx11"].offer("nbg1")
    assert nbg1 is not None and nbg1.deprecation is not None and not nbg1.orderable(now)
    assert nbg1.deprecation.unavailable_after.date().isoformat() == "2025-12-31"
    assert types["cpx11"].orderable_in("ash", now)
    sold_out = types["cx43"].offer("nbg1")
    assert sold_out is not None and not sold_out.available and not sold_out.deprecation
    assert types["cx23"].offer("fsn1").monthly_price == 5.49  # type: ignore[union-attr]
    lb_types = {t.name: t for t in await provider.load_balancer_types()}
    assert "fsn1" in lb_types["lb11"].locations and lb_types["lb11"].deprecation is None
    zones = {loc.name: loc.network_zone for loc in await provider.locations()}
    assert zones["ash"] == "us-east" and zones["hel1"] == "eu-central"
    before = sim.stats.total
    await provider.server_types()
    await provider.load_balancer_types()
    await provider.locations()
    assert sim.stats.total == before


async def test_a_server_that_never_starts_is_named(sim, provider_factory) -> None:  # type: ignore[no-untyped-def]
    """'waiting for Hetzner action 100012' left the operator guessing which server hung."""
    import dataclasses

    from hk8s.errors import WaitTimeoutError
    from hk8s.model.resources import ServerSpec

    sim.set_faults(FaultSpec.parse({"never_running": ["demo-w-*"]}))
    quick = provider_factory(timing=dataclasses.replace(Timing().scaled(50), action_timeout=1.0))
    spec = ServerSpec("demo-w-3", "cx23", "ubuntu-24.04", "fsn1", dict(LABELS))
    with pytest.raises(WaitTimeoutError) as info:
        await quick.create_server(spec)
    assert "server demo-w-3 to be created and running" in str(info.value)


async def test_concurrent_creates_cost_one_request_each_plus_shared_batched_polls(  # type: ignore[no-untyped-def]
    sim, provider
) -> None:
    # 30 servers at once: one POST each (the answer holds the server; no GET per server), and
    # their create and start actions are waited for together in batched GET /actions polls.
    net = await provider.create_network(net_spec(subnets=(Subnet("10.0.1.0/24", "eu-central"),)))
    sim.stats.reset()
    specs = [
        ServerSpec(f"demo-w-{i}", "cx23", "ubuntu-24.04", "fsn1", LABELS, network_ids=(net.id,))
        for i in range(30)
    ]
    servers = await asyncio.gather(*(provider.create_server(s) for s in specs))
    assert sorted(s.name for s in servers) == sorted(s.name for s in specs)
    assert all([p.network_id for p in s.private_ips] == [net.id] for s in servers)
    assert sim.stats.count("POST", "/servers") == 30
    assert sim.stats.count("GET", "/servers/{id}") == 0
    polls = sim.stats.count("GET", "/actions")
    assert sim.stats.total == 30 + polls
    assert polls < 30  # 60 actions in batches of up to 25: fewer polls than servers
