"""``hk8s create``: the whole cluster from cluster.yaml, converging on every re-run.

The phases, each idempotent (a run that was killed anywhere is finished by the next one):

1. secrets: load, or generate before the first server exists (``_secrets``); then
   refuse if a configured node runs other versions than the config: that is an upgrade
   (``create._skew``);
2. snapshots per architecture (``image._cluster``);
3. one plan for infra and servers; everything but removals is applied now, concurrently
   (``Reconciler``; ``hk8s plan`` prints the same plan); then Hetzner delete protection as
   ``protection`` says (``create._protection``). Servers of the config that are off are powered on;
   a server Hetzner never finishes starting is left out of the later phases (where safety
   allows: etcd needs one control plane) and named at the end, exit 1, for a re-run to finish;
4. machine configs to new and changed nodes (``_nodes``), and meanwhile
5. etcd bootstrap on the first control plane as soon as it has its config, membership of
   every control plane as they come;
6. kubeconfig (from Talos, server = the cluster endpoint) and talosconfig, written 0600;
7. addons (``_addons``) and every node Ready;
8. removals of scaled-down servers, one at a time (``_scale``);
9. the health gate (``_health``).

Ports are injected (``CreatePorts``), so the CLI wires real clients and tests wire fakes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.controller._addons import install_addons
from hk8s.controller._backup import converge_backup
from hk8s.controller._claim import claim_cluster
from hk8s.controller._etcd_members import bootstrap_etcd, fetch_kubeconfig, wait_etcd_members
from hk8s.controller._health import HealthCheck, wait_healthy
from hk8s.controller._nodes import (
    configure_nodes,
    observe_endpoint,
    pair_nodes,
    render_node_configs,
)
from hk8s.controller._reconcile import Reconciler
from hk8s.controller._report import NullReporter, ProgressEvent
from hk8s.controller._scale import NodeRemover, split_removals
from hk8s.controller._secrets import ensure_secrets
from hk8s.controller._servers import CONFIG_HASH_LABEL, server_selector
from hk8s.controller._servers_component import ServersComponent
from hk8s.controller._stragglers import Stragglers
from hk8s.controller._waits import Waiter, together, wait_nodes_ready
from hk8s.controller.create._protection import converge_delete_protection
from hk8s.controller.create._skew import refuse_version_skew
from hk8s.controller.image._cluster import cluster_images
from hk8s.controller.infra._component import InfraComponent
from hk8s.errors import (
    ConflictError,
    NotFoundError,
    UnavailableError,
    UsageError,
    WaitTimeoutError,
)
from hk8s.pki import generate_talosconfig, write_kubeconfig, write_talosconfig

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from hk8s.config import ClusterConfig
    from hk8s.controller._nodes import Node
    from hk8s.controller._plan import Plan
    from hk8s.controller._reconcile import Component
    from hk8s.controller._report import Reporter
    from hk8s.controller.image._cluster import ClusterImages
    from hk8s.controller.image._ensure import ImageBuilds
    from hk8s.model import Clock, Timing
    from hk8s.model.resources import PlacementGroup, Server
    from hk8s.pki import SecretsBundle
    from hk8s.pki.sigv4 import Credentials
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = [
    "CreateOptions",
    "CreatePorts",
    "CreateResult",
    "check_endpoint_kept",
    "create_cluster",
]


@dataclass(frozen=True)
class CreateOptions:
    secrets_path: Path
    kubeconfig_path: Path
    talosconfig_path: Path
    token: str = field(repr=False)
    build_images: bool = True
    # S3 credentials for backup: (read from the environment by the CLI), None without backup:
    # or when backup.credentials.secret names an existing Secret.
    backup_credentials: Credentials | None = field(default=None, repr=False)


@dataclass
class CreatePorts:
    """The clients ``create`` talks through. ``talos(bundle)`` returns the Talos API for
    ordinary calls and one that tries once (for probes); ``kube(kubeconfig)`` a client."""

    hcloud: HcloudPort
    talos: Callable[[SecretsBundle], tuple[TalosNodeAPI, TalosNodeAPI]]
    kube: Callable[[Mapping[str, Any]], KubernetesAPI]
    clock: Clock
    timing: Timing
    infra: Sequence[Component] = ()
    builds: ImageBuilds | None = None  # how snapshots are found and built
    images: ClusterImages | None = None  # known snapshots: skip the image step (tests)


@dataclass(frozen=True)
class CreateResult:
    cluster: str
    plan: Plan
    endpoint: str
    secrets_path: Path
    secrets_generated: bool
    kubeconfig_path: Path
    talosconfig_path: Path
    configured: list[str]
    removed: list[str]
    nodes: list[str]
    health: list[HealthCheck]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "endpoint": self.endpoint,
            "changes": self.plan.counts(),
            "secrets": str(self.secrets_path),
            "secrets_generated": self.secrets_generated,
            "kubeconfig": str(self.kubeconfig_path),
            "talosconfig": str(self.talosconfig_path),
            "configured": self.configured,
            "removed": self.removed,
            "nodes": self.nodes,
            "health": [c.to_dict() for c in self.health],
        }


def check_endpoint_kept(plan: Plan, servers: Sequence[Server], config: ClusterConfig) -> None:
    """Refuse to add or remove the API load balancer of a running cluster.

    The load balancer's IP is the cluster endpoint every kubeconfig, machine config and API
    certificate names; moving it on a live cluster would cut every client and node off (and
    ``load_balancer.enabled`` defaults to ``control_plane.count > 1``, so scaling the control
    plane to 1 would do it silently).
    """
    running = [s.name for s in servers if CONFIG_HASH_LABEL in s.labels]
    changes = [op for op in plan.operations if op.kind == "load-balancer" and op.type != "update"]
    if running and changes:
        verb = "remove" if changes[0].type == "delete" else "add"
        keep = "true" if verb == "remove" else "false"
        raise UsageError(
            f"refusing to {verb} the API load balancer of the running cluster {config.name}: "
            "its address is the cluster endpoint of every node, kubeconfig and certificate",
            hint=f"set load_balancer.enabled: {keep} in the config to keep the endpoint "
            "(it defaults to control_plane.count > 1)",
        )


async def _power_on_stopped(
    hcloud: HcloudPort, waiter: Waiter, servers: Sequence[Server], wanted: set[str],
    stuck: list[str],
) -> bool:  # fmt: skip
    """Power on the cluster's servers that are off (by hand, or by Hetzner): the config wants
    them in the cluster. One Hetzner never starts joins ``stuck``. True if any was off."""
    stopped = [s for s in servers if s.status == "off" and s.name in wanted]

    async def power_on(server: Server) -> None:
        key, title = f"server/{server.name}", f"power on server {server.name}"
        waiter.plan(key, title)
        waiter.step(key, title)
        try:
            await hcloud.power_on(server.id)
        except WaitTimeoutError as exc:
            stuck.append(server.name)
            waiter.reporter.emit(ProgressEvent("failed", key, title, exc.message))
            return
        waiter.done(key, title)

    await asyncio.gather(*(power_on(s) for s in stopped))
    return bool(stopped)


_STUCK_HINT = (
    "check these servers in the Hetzner Console (reboot or delete them), then run hk8s "
    "create again: it finishes them"
)


def _stuck_text(nodes: Sequence[Node]) -> str:
    """The stuck nodes by what they are stuck in: Hetzner never finished starting the server
    (its status says so), or the server runs and its Talos API never answered."""
    starting = sorted(n.name for n in nodes if n.server.status != "running")
    silent = sorted(n.name for n in nodes if n.server.status == "running")
    parts = []
    if starting:
        states = sorted({n.server.status for n in nodes if n.name in starting})
        parts.append(
            f"{', '.join(starting)} still in Hetzner's {'/'.join(states)!s} state "
            "(server create or start not finished; the other servers were running)"
        )
    if silent:
        parts.append(
            f"{', '.join(silent)} never answered on the Talos API (stuck booting or in "
            "maintenance mode)"
        )
    return "; ".join(parts)


def _network_id(servers: Sequence[Server], config: ClusterConfig) -> int:
    for server in servers:
        for private in server.private_ips:
            return private.network_id
    raise NotFoundError(f"the servers of {config.name} are not attached to a network")


async def create_cluster(
    config: ClusterConfig,
    ports: CreatePorts,
    options: CreateOptions,
    reporter: Reporter | None = None,
) -> CreateResult:
    """Converge the cluster of ``config``; see the module docstring for the phases."""
    reporter = reporter or NullReporter()
    hcloud = ports.hcloud
    waiter = Waiter(ports.clock, ports.timing, reporter)
    existing = await hcloud.list_servers(server_selector(config.name))
    secrets = ensure_secrets(options.secrets_path, existing, config.name)
    if secrets.generated:
        waiter.info("secrets", f"generated the secrets bundle {options.secrets_path} (0600)")
    bundle = secrets.bundle
    infra = next((c for c in ports.infra if isinstance(c, InfraComponent)), None)
    groups: list[PlacementGroup] = []
    try:
        # Before the first snapshot build or server: a second operator stops here.
        await claim_cluster(hcloud, config.name, bundle, listed=groups)
    except ConflictError:
        if secrets.generated:
            # Ours was never used: leave no second, unrelated PKI beside the config.
            options.secrets_path.unlink(missing_ok=True)
        raise
    talos, probe = ports.talos(bundle)
    # Versions are `hk8s upgrade`'s: refuse before the first snapshot, server or config.
    await refuse_version_skew(config, bundle, existing, hcloud=hcloud, probe=probe,
                              kube=ports.kube, waiter=waiter)  # fmt: skip
    images = ports.images or await cluster_images(
        config,
        hcloud,
        build=options.build_images,
        clock=ports.clock,
        timing=ports.timing,
        reporter=reporter,
        builds=ports.builds,
    )
    remover = NodeRemover(hcloud, talos, probe, waiter)
    servers = ServersComponent(
        hcloud,
        config,
        cluster_id=bundle.cluster_id,
        images=images.by_arch,
        remover=remover,
        listed=existing,
        stragglers=Stragglers(ports.clock, ports.timing),
    )
    if infra is not None:
        infra.listed_placement_groups(groups)  # the claim listed them all
    reconciler = Reconciler([*ports.infra, servers], reporter)
    for warning in reconciler.warnings():
        reporter.emit(ProgressEvent("warning", "", "warning", warning))
    plan = await reconciler.plan()
    check_endpoint_kept(plan, existing, config)
    now, later = split_removals(plan)
    applied = await reconciler.apply(now, phase="infra and servers")
    # Servers Hetzner created but never finished starting: left out of every later phase
    # (as far as that is safe, below) and named at the end, so the rest converges now and a
    # re-run finishes them.
    stuck = sorted(key.split("/", 1)[1] for key in applied.left_out if key.startswith("server/"))

    # What the apply left, without listing again what this run already knows (design.md §4).
    observed = servers.after_apply(applied)
    if observed is None:
        observed = await hcloud.list_servers(server_selector(config.name))
    keep = {d.name for d in servers.desired}
    if await _power_on_stopped(hcloud, waiter, observed, keep, stuck):
        observed = await hcloud.list_servers(server_selector(config.name))
    known = (infra.load_balancer_now(applied), infra.network_now(applied)) if infra else None
    # protection: true -> Hetzner delete protection on what must stay; servers about to be
    # removed are left (or made) unprotected, so their removal later can go through. A
    # stuck server is locked by its start action: it is left alone.
    await converge_delete_protection(
        hcloud,
        config,
        [s for s in observed if s.name not in stuck],
        keep=keep,
        reporter=reporter,
        infra=known,
    )
    nodes = pair_nodes(servers.desired, observed)
    missing = sorted({d.name for d in servers.desired} - {n.name for n in nodes})
    if missing:
        raise NotFoundError(f"servers missing after create: {', '.join(missing)}")
    control_planes = [n for n in nodes if n.desired.control_plane]
    lb = known[0] if known else None
    endpoint = await observe_endpoint(hcloud, config, nodes, load_balancer=lb)
    configs = render_node_configs(config, bundle, nodes, endpoint, schematic=images.schematic)
    # etcd is bootstrapped as soon as a control plane has its config; the other nodes are
    # configured meanwhile and join as they come (etcd members, kubelets).
    bootstrap_on: list[Node] = []
    first_configured = asyncio.Event()

    def on_configured(node: Node) -> None:
        if node.desired.control_plane and not bootstrap_on:
            bootstrap_on.append(node)
            first_configured.set()

    async def configure() -> list[str]:
        try:
            started = [n for n in nodes if n.name not in stuck]
            return await configure_nodes(hcloud, talos, probe, waiter, started, configs,
                                         stuck=stuck, on_configured=on_configured)  # fmt: skip
        finally:
            first_configured.set()  # every node done or stuck: bring_up sees what there is

    async def bootstrap() -> None:
        await first_configured.wait()
        if bootstrap_on:
            first = bootstrap_on[0]
            others = [n for n in control_planes if n is not first]
            await bootstrap_etcd(talos, probe, waiter, [first, *others])

    configured, _ = await together(configure(), bootstrap())
    # Nodes that never answered are left out of the later phases and named at the end, as
    # far as that is safe: etcd needs one control plane to bootstrap on, and without a load
    # balancer the endpoint is the first control plane's own address.
    ready = [n for n in nodes if n.name not in stuck]
    stuck_cps = [n for n in control_planes if n.name in stuck]
    control_planes = [n for n in control_planes if n.name not in stuck]
    if stuck_cps and (not control_planes or any(n.address == endpoint.host for n in stuck_cps)):
        raise UnavailableError(
            f"control plane(s) {_stuck_text(stuck_cps)}, and the cluster cannot be "
            "bootstrapped without "
            + ("any control plane" if not control_planes else "its endpoint"),
            hint=_STUCK_HINT,
        )
    await wait_etcd_members(probe, waiter, control_planes)
    kubeconfig = await fetch_kubeconfig(talos, waiter, control_planes[0], endpoint)
    write_kubeconfig(options.kubeconfig_path, yaml.safe_dump(kubeconfig, sort_keys=False))
    talosconfig = generate_talosconfig(
        config.name, bundle.os_ca, endpoints=[n.address for n in control_planes]
    )
    write_talosconfig(options.talosconfig_path, talosconfig)
    waiter.info("kubeconfig", f"wrote {options.kubeconfig_path} and {options.talosconfig_path}")

    kube = ports.kube(kubeconfig)
    try:
        waiter.step("kubernetes", f"Kubernetes API at {endpoint.url}")
        await kube.wait_api_ready()
        waiter.done("kubernetes", f"Kubernetes API at {endpoint.url}")
        await install_addons(
            kube, config, waiter, token=options.token, network_id=_network_id(observed, config)
        )
        await converge_backup(kube, config, waiter, credentials=options.backup_credentials)
        names = [n.name for n in ready]
        await wait_nodes_ready(kube, waiter, names)
        removed: list[str] = []
        if not later.empty:
            remover.kube = kube
            remover.control_planes = control_planes
            remover.addresses = {s.name: s.public_ipv4 for s in observed if s.public_ipv4}
            await reconciler.apply(later, phase="scale down")
            removed = sorted(op.name for op in later.operations if op.kind == "server")
            # Placement groups of a removed pool are deleted only once empty: now they are.
            tidy = Reconciler(list(ports.infra), reporter)
            await tidy.apply(await tidy.plan(), phase="scale down")
        health = await wait_healthy(probe, kube, waiter, ready, ignore=stuck)
    finally:
        await kube.close()
    if stuck:
        raise UnavailableError(
            f"cluster {config.name} is up with {len(ready)} node(s), but "
            + _stuck_text([n for n in nodes if n.name in stuck]),
            hint=_STUCK_HINT,
        )
    return CreateResult(
        cluster=config.name,
        plan=plan,
        endpoint=endpoint.url,
        secrets_path=options.secrets_path,
        secrets_generated=secrets.generated,
        kubeconfig_path=options.kubeconfig_path,
        talosconfig_path=options.talosconfig_path,
        configured=configured,
        removed=removed,
        nodes=names,
        health=health,
    )
