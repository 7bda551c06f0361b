"""The create flow against in-memory fakes: phases, idempotence, scaling, token hygiene."""

from __future__ import annotations

import dataclasses
import stat
from typing import TYPE_CHECKING, Any

import pytest

from controller_support import TOKEN, cluster
from hk8s.controller import CONFIG_HASH_LABEL, RecordingReporter, create_cluster
from hk8s.errors import SecretsError
from hk8s.providers.talos import ApplyMode

if TYPE_CHECKING:
    from controller_support import Harness


def names(harness: Harness) -> list[str]:
    return sorted(s.name for s in harness.hcloud.servers.values())


async def test_first_run_builds_the_cluster_and_second_run_changes_nothing(
    harness: Harness,
) -> None:
    config = cluster(cp=3, workers=2)
    reporter = RecordingReporter()
    result = await create_cluster(config, harness.ports(config), harness.options(), reporter)
    assert names(harness) == [
        "demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1", "demo-workers-2",
    ]  # fmt: skip
    # every server in one request: network, placement group, image, labels
    for server in harness.hcloud.servers.values():
        assert server.image_id == 99
        assert server.placement_group_id is not None
        assert server.private_ips
        assert server.labels[CONFIG_HASH_LABEL]
    assert all(mode is ApplyMode.AUTO and maint for _, mode, maint in harness.talos.applied)
    assert harness.talos.bootstraps == ["demo-cp-1"]
    assert harness.talos.members == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    [lb] = harness.hcloud.load_balancers.values()
    assert result.endpoint == f"https://{lb.public_ipv4}:6443"
    assert all(check.ok for check in result.health)
    for path in (result.kubeconfig_path, result.talosconfig_path, result.secrets_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"server: https://{lb.public_ipv4}:6443" in result.kubeconfig_path.read_text()
    # addons: the hcloud Secret first, then each chart's Job
    kinds = [(o["kind"], o["metadata"]["name"]) for o in harness.kube.applied]
    assert kinds[0] == ("Secret", "hcloud")
    assert next(n for k, n in kinds if k == "Job").startswith("hk8s-cilium-")
    # the token is in the Secret only: no event, no file
    text = " ".join(f"{e.title} {e.detail}" for e in reporter.events)
    assert TOKEN not in text
    for path in harness.tmp.iterdir():
        assert TOKEN not in path.read_text()

    harness.hcloud.calls.clear()
    harness.talos.applied.clear()
    again = await create_cluster(config, harness.ports(config), harness.options())
    assert harness.hcloud.mutations() == []
    assert harness.talos.applied == []
    assert again.plan.empty and again.configured == []
    assert not again.secrets_generated


async def test_changed_config_is_applied_over_mtls(harness: Harness) -> None:
    config = cluster(cp=1)
    await create_cluster(config, harness.ports(config), harness.options())
    harness.talos.applied.clear()
    patched = cluster(
        cp=1,
        extra="talos:\n  patches:\n    all:\n      - apiVersion: v1alpha1\n"
        "        kind: SysctlConfig\n        params: {vm.max_map_count: '262144'}\n",
    )
    result = await create_cluster(patched, harness.ports(patched), harness.options())
    assert harness.talos.applied == [("demo-cp-1", ApplyMode.AUTO, False)]
    assert result.configured == ["demo-cp-1"]


async def test_scale_up_then_down_drains_and_leaves_etcd(harness: Harness) -> None:
    config = cluster(cp=3, workers=2)
    await create_cluster(config, harness.ports(config), harness.options())
    bigger = cluster(cp=3, workers=4)
    await create_cluster(bigger, harness.ports(bigger), harness.options())
    assert len([n for n in names(harness) if "workers" in n]) == 4
    smaller = cluster(cp=1, workers=1, extra="load_balancer:\n  enabled: true\n")
    result = await create_cluster(smaller, harness.ports(smaller), harness.options())
    assert names(harness) == ["demo-cp-1", "demo-workers-1"]
    assert harness.kube.drained == [
        "demo-workers-4", "demo-workers-3", "demo-workers-2", "demo-cp-3", "demo-cp-2",
    ]  # fmt: skip
    assert harness.talos.left == ["demo-cp-3", "demo-cp-2"]
    assert harness.talos.members == ["demo-cp-1"]
    assert sorted(harness.kube.deleted) == sorted(harness.kube.drained)
    assert result.removed == sorted(harness.kube.drained)
    assert [g.name for g in harness.hcloud.placement_groups.values()]


async def test_lost_secrets_of_a_live_cluster_stop_before_any_change(harness: Harness) -> None:
    config = cluster(cp=1)
    await create_cluster(config, harness.ports(config), harness.options())
    (harness.tmp / "secrets.yaml").unlink()
    harness.hcloud.calls.clear()
    with pytest.raises(SecretsError):
        await create_cluster(config, harness.ports(config), harness.options())
    assert harness.hcloud.mutations() == []
    assert not (harness.tmp / "secrets.yaml").exists()


async def test_a_server_whose_create_answer_was_lost_is_adopted(harness: Harness) -> None:
    from hk8s.errors import ConflictError

    config = cluster(cp=1, workers=1)
    # The request went through, but the answer said "name taken" (a retried create whose
    # first attempt had succeeded): the server is adopted, not duplicated or failed.
    harness.hcloud.fail(
        "create_server", ConflictError("name is already used", code="uniqueness_error"), after=True
    )
    reporter = RecordingReporter()
    await create_cluster(config, harness.ports(config), harness.options(), reporter)
    assert names(harness) == ["demo-cp-1", "demo-workers-1"]
    assert any(e.title.startswith("adopted server") for e in reporter.events)


async def test_the_endpoint_of_a_running_cluster_is_kept(harness: Harness) -> None:
    from hk8s.errors import UsageError

    config = cluster(cp=3, workers=1)
    await create_cluster(config, harness.ports(config), harness.options())
    harness.hcloud.calls.clear()
    # one control plane: the load balancer would default to off, moving the endpoint
    smaller = cluster(cp=1, workers=1)
    with pytest.raises(UsageError, match="refusing to remove the API load balancer") as info:
        await create_cluster(smaller, harness.ports(smaller), harness.options())
    assert info.value.hint and "load_balancer.enabled: true" in info.value.hint
    assert harness.hcloud.mutations() == []
    assert len(harness.hcloud.load_balancers) == 1


async def test_a_removed_pool_is_drained_and_its_placement_group_deleted(
    harness: Harness,
) -> None:
    from hk8s.config import parse_config

    base = (
        "name: demo\nlocation: fsn1\nfirewall:\n  kube_api_sources: [203.0.113.7/32]\n"
        "  talos_api_sources: [203.0.113.7/32]\nworkers:\n  - name: a\n    count: 1\n"
    )
    both = parse_config(base + "  - name: b\n    count: 2\n")
    await create_cluster(both, harness.ports(both), harness.options())
    only_a = parse_config(base)
    result = await create_cluster(only_a, harness.ports(only_a), harness.options())
    assert names(harness) == ["demo-a-1", "demo-cp-1"]
    assert harness.kube.drained == ["demo-b-2", "demo-b-1"]
    assert result.removed == ["demo-b-1", "demo-b-2"]
    groups = sorted(g.name for g in harness.hcloud.placement_groups.values())
    assert groups == ["demo-a-pg-1", "demo-claim", "demo-cp-pg-1"]
    harness.hcloud.calls.clear()
    await create_cluster(only_a, harness.ports(only_a), harness.options())
    assert harness.hcloud.mutations() == []


async def test_protection_protects_what_stays_and_scale_down_still_works(
    harness: Harness,
) -> None:
    config = cluster(cp=1, workers=2, extra="protection: true\n")
    await create_cluster(config, harness.ports(config), harness.options())
    assert all(s.protected for s in harness.hcloud.servers.values())
    assert all(n.protected for n in harness.hcloud.networks.values())
    harness.hcloud.calls.clear()
    await create_cluster(config, harness.ports(config), harness.options())
    assert harness.hcloud.mutations() == []
    smaller = cluster(cp=1, workers=1, extra="protection: true\n")
    await create_cluster(smaller, harness.ports(smaller), harness.options())
    assert names(harness) == ["demo-cp-1", "demo-workers-1"]
    assert all(s.protected for s in harness.hcloud.servers.values())


async def test_a_node_labelled_configured_but_in_maintenance_gets_its_config_again(
    harness: Harness,
) -> None:
    """The config-hash label said "configured", so the node was skipped forever although it
    still answered in maintenance mode (took the config, never installed it; or was reset)."""
    config = cluster(cp=1, workers=1)
    await create_cluster(config, harness.ports(config), harness.options())
    worker = next(s for s in harness.hcloud.servers.values() if s.name == "demo-workers-1")
    assert worker.labels.get(CONFIG_HASH_LABEL)
    harness.talos.configs.pop(worker.public_ipv4)  # back in maintenance mode
    harness.talos.applied.clear()
    reporter = RecordingReporter()
    await create_cluster(config, harness.ports(config), harness.options(), reporter)
    assert [(name, maintenance) for name, _, maintenance in harness.talos.applied] == [
        ("demo-workers-1", True)
    ]
    assert any("still in maintenance mode" in e.title for e in reporter.events)


async def test_a_worker_that_never_answers_does_not_hold_up_the_cluster(
    harness: Harness,
) -> None:
    """One stuck worker used to block everything (no etcd bootstrap) without a name. Now the
    cluster comes up with the nodes that answer, and the stuck one is named at the end."""
    from hk8s.errors import UnavailableError

    talos = harness.talos
    real_version = talos.version

    async def version(node: str, *, maintenance: bool = False) -> Any:
        if talos.name(node) == "demo-workers-2":
            raise UnavailableError("connection refused")
        return await real_version(node, maintenance=maintenance)

    talos.version = version  # type: ignore[method-assign]
    config = cluster(cp=1, workers=2)
    with pytest.raises(UnavailableError) as info:
        await create_cluster(config, harness.ports(config), harness.options())
    assert "demo-workers-2 never answered on the Talos API" in info.value.message
    assert talos.bootstraps == ["demo-cp-1"]
    assert sorted(name for name, _, _ in talos.applied) == ["demo-cp-1", "demo-workers-1"]
    assert (harness.tmp / "kubeconfig").exists()


def _unreachable(harness: Harness, *names: str) -> None:
    from hk8s.errors import UnavailableError

    talos = harness.talos
    real_version = talos.version

    async def version(node: str, *, maintenance: bool = False) -> Any:
        if talos.name(node) in names:
            raise UnavailableError("connection refused")
        return await real_version(node, maintenance=maintenance)

    talos.version = version  # type: ignore[method-assign]


async def test_a_stuck_control_plane_is_left_out_when_another_can_bootstrap(
    harness: Harness,
) -> None:
    from hk8s.errors import UnavailableError

    _unreachable(harness, "demo-cp-2")
    config = cluster(cp=3)  # three control planes: behind the API load balancer
    with pytest.raises(UnavailableError) as info:
        await create_cluster(config, harness.ports(config), harness.options())
    assert "demo-cp-2 never answered" in info.value.message
    assert harness.talos.bootstraps == ["demo-cp-1"]


async def test_without_any_control_plane_nothing_is_bootstrapped(harness: Harness) -> None:
    from hk8s.errors import UnavailableError

    _unreachable(harness, "demo-cp-1")
    config = cluster(cp=1, workers=1)
    with pytest.raises(UnavailableError) as info:
        await create_cluster(config, harness.ports(config), harness.options())
    assert "demo-cp-1 never answered" in info.value.message
    assert "without any control plane" in info.value.message
    assert harness.talos.bootstraps == []


async def test_a_change_that_needs_a_reboot_reboots_one_node_at_a_time(harness: Harness) -> None:
    # A user patch outside what Talos applies live (CanApplyImmediate: .machine.files, env,
    # udev, most features): each node reboots with its config; never several at once.
    config = cluster(cp=3, workers=2, extra="talos:\n  version: v1.13.9\n")
    await create_cluster(config, harness.ports(config), harness.options(), RecordingReporter())
    harness.talos.reboot_changes = True
    harness.talos.applied.clear()
    # machine.env: in Talos 1.13's v1alpha1 (1.14 moved it to its own document)
    patched = cluster(
        cp=3,
        workers=2,
        extra="talos:\n  version: v1.13.9\n  patches:\n    all:\n      - machine: {env: {A: b}}\n",
    )
    await create_cluster(patched, harness.ports(patched), harness.options(), RecordingReporter())
    assert [name for name, _, _ in harness.talos.applied] == [
        "demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1", "demo-workers-2",
    ]  # fmt: skip
    assert harness.talos.max_rebooting == 1
    assert not any(harness.talos.rebooting.values())  # each came back before the next


def _never_starts(harness: Harness, name: str) -> None:
    """Hetzner creates ``name`` but never finishes starting it (status stays "starting"):
    the provider's action wait times out, naming the server."""
    from hk8s.errors import WaitTimeoutError

    hcloud = harness.hcloud
    real_create = hcloud.create_server

    async def create_server(spec: Any) -> Any:
        server = await real_create(spec)
        if spec.name != name:
            return server
        hcloud.servers[server.id] = dataclasses.replace(server, status="starting")
        raise WaitTimeoutError(f"server {name} to be created and running", 900)

    hcloud.create_server = create_server  # type: ignore[method-assign]


async def test_a_server_hetzner_never_starts_is_left_out_and_named(harness: Harness) -> None:
    """A worker stuck in "starting" failed the servers phase for the whole cluster ("waiting
    for Hetzner action 100012", no etcd). Now the others converge, etcd is bootstrapped, and
    the run fails at the end naming the stuck server; the re-run finishes it."""
    from hk8s.errors import UnavailableError

    _never_starts(harness, "demo-workers-2")
    config = cluster(cp=3, workers=2)
    reporter = RecordingReporter()
    with pytest.raises(UnavailableError) as info:
        await create_cluster(config, harness.ports(config), harness.options(), reporter)
    message = info.value.message
    assert "is up with 4 node(s)" in message
    assert "demo-workers-2 still in Hetzner's starting state" in message
    assert harness.talos.bootstraps == ["demo-cp-1"]
    assert harness.talos.members == ["demo-cp-1", "demo-cp-2", "demo-cp-3"]
    configured = sorted(name for name, _, _ in harness.talos.applied)
    assert configured == ["demo-cp-1", "demo-cp-2", "demo-cp-3", "demo-workers-1"]
    assert (harness.tmp / "kubeconfig").exists()
    # the servers step says which server and why, not only the action id
    [failed] = [e for e in reporter.events if e.kind == "failed" and e.key.startswith("server/")]
    assert failed.key == "server/demo-workers-2" and "stuck in Hetzner" in (failed.detail or "")

    # Hetzner finishes starting it: the re-run configures it and the cluster is whole.
    for sid, server in harness.hcloud.servers.items():
        if server.status == "starting":
            harness.hcloud.servers[sid] = dataclasses.replace(server, status="running")
    harness.talos.applied.clear()
    result = await create_cluster(config, harness.ports(config), harness.options())
    assert result.configured == ["demo-workers-2"]
    assert all(check.ok for check in result.health)


async def test_a_lone_control_plane_hetzner_never_starts_stops_before_bootstrap(
    harness: Harness,
) -> None:
    from hk8s.errors import UnavailableError

    _never_starts(harness, "demo-cp-1")
    config = cluster(cp=1, workers=1)
    with pytest.raises(UnavailableError) as info:
        await create_cluster(config, harness.ports(config), harness.options())
    assert "demo-cp-1 still in Hetzner's starting state" in info.value.message
    assert "without any control plane" in info.value.message
    assert harness.talos.bootstraps == []


async def test_a_server_that_is_off_is_powered_on(harness: Harness) -> None:
    """A node powered off (by hand, or by Hetzner) left create waiting for etcd and Ready
    until its timeout; the config wants it in the cluster: create powers it on."""
    config = cluster(cp=1, workers=1)
    await create_cluster(config, harness.ports(config), harness.options())
    [(sid, worker)] = [(i, s) for i, s in harness.hcloud.servers.items() if "workers" in s.name]
    harness.hcloud.servers[sid] = dataclasses.replace(worker, status="off")
    harness.hcloud.calls.clear()
    result = await create_cluster(config, harness.ports(config), harness.options())
    assert harness.hcloud.mutations() == ["power_on"]
    assert harness.hcloud.servers[sid].status == "running"
    assert result.configured == [] and all(check.ok for check in result.health)


async def test_a_server_that_does_not_power_on_is_named(harness: Harness) -> None:
    from hk8s.errors import UnavailableError, WaitTimeoutError

    config = cluster(cp=1, workers=2)
    await create_cluster(config, harness.ports(config), harness.options())
    [(sid, worker)] = [(i, s) for i, s in harness.hcloud.servers.items() if s.name.endswith("-2")]
    harness.hcloud.servers[sid] = dataclasses.replace(worker, status="off")
    harness.hcloud.fail("power_on", WaitTimeoutError("server demo-workers-2 to start", 900))
    with pytest.raises(UnavailableError) as info:
        await create_cluster(config, harness.ports(config), harness.options())
    assert "is up with 2 node(s)" in info.value.message
    assert "demo-workers-2 still in Hetzner's off state" in info.value.message


def reads(harness: Harness) -> list[str]:
    """The Hetzner reads since the calls were cleared, as ``name(args)``, sorted."""
    calls = harness.hcloud.calls
    return sorted(f"{n}{a}" for n, a in calls if n.startswith(("list_", "get_")))


def expect(*calls: tuple[str, tuple[Any, ...]]) -> list[str]:
    return sorted(f"{n}{a}" for n, a in calls)


async def test_a_run_lists_each_collection_once(harness: Harness) -> None:
    """The reads of ``create`` (without the CLI's catalogue and the image step): what one run
    already listed or made is not listed again (design.md section 4; #17 found the servers
    listed three times in a no-op re-run, the load balancer four times, the placement groups
    twice)."""
    config = cluster(cp=3, workers=3, extra="protection: true\n")
    selector = "cluster=demo,managed-by=hk8s"
    infra = [
        ("list_networks", (selector, None)),
        ("list_firewalls", (selector, None)),
        ("list_load_balancers", (selector, None)),
    ]
    # One list of placement groups finds the claim and tells the infra plan the pools' groups.
    claim = ("list_placement_groups", (selector, None))
    servers = ("list_servers", (selector, None))
    await create_cluster(config, harness.ports(config), harness.options())
    # Once more after the creates: the servers as they run, not as their create answered.
    assert reads(harness) == expect(servers, claim, *infra, servers)
    assert all(s.protected for s in harness.hcloud.servers.values())
    assert all(lb.protected for lb in harness.hcloud.load_balancers.values())
    assert all(n.protected for n in harness.hcloud.networks.values())

    harness.hcloud.calls.clear()
    await create_cluster(config, harness.ports(config), harness.options())
    # The version-skew check asks for the endpoint's load balancer before the plan lists it.
    skew = ("list_load_balancers", (None, "demo-api"))
    assert reads(harness) == expect(servers, claim, skew, *infra)
    assert harness.hcloud.mutations() == []
