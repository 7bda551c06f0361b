"""Machine configs over the Talos API: new nodes in maintenance mode, changed nodes over mTLS.

Servers boot the Talos snapshot without user data and wait in maintenance mode (design.md
section 3); hk8s renders each node's config and sends it with ``ApplyConfiguration``.

Which nodes need a config is decided by a hash, not by reading configs back: after a node
took its config hk8s stores ``hk8s/config-hash`` (16 hex digits of the SHA-256 of the
rendered config) on the server. Equal hash -> the node is left alone, no Talos call at all.
Missing or different hash -> hk8s asks the node how it is: answering over mTLS means it is
configured (the config changed, or a run was interrupted before the label was written): the
new config is applied in ``AUTO`` mode, in which Talos applies without a reboot whenever the
change allows it (``machine.ApplyConfigurationRequest`` docs); a change that would reboot
the node (a dry run says so) is applied one node at a time (``_node_reboots``); answering
only insecurely
means maintenance mode: the config is applied there (the node installs and reboots). Rendering
is deterministic, so the same inputs always give the same hash. (Reading configs back via COSI
``MachineConfig`` would cost a call per node on every run.)

The cluster endpoint is the API load balancer's public IP when there is one, else the first
control plane's public IP; certificate SANs list the LB IP and every control plane's public
and private IP, so every way in verifies.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.controller._node_reboots import reboot_one_at_a_time
from hk8s.controller._report import ProgressEvent
from hk8s.controller._servers import CONFIG_HASH_LABEL, DesiredServer, Node
from hk8s.errors import (
    AuthError,
    Hk8sError,
    NotFoundError,
    OperationsFailedError,
    SecretsError,
    UnavailableError,
    WaitTimeoutError,
)
from hk8s.machineconfig import render_machine_config
from hk8s.providers.talos import ApplyMode, MaintenanceModeError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from hk8s.config import ClusterConfig
    from hk8s.controller._waits import Waiter
    from hk8s.model.resources import LoadBalancer, Server
    from hk8s.pki import SecretsBundle
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.talos import ApplyResult, TalosNodeAPI

__all__ = [
    "ClusterEndpoint",
    "Node",
    "cluster_endpoint",
    "config_hash",
    "configure_nodes",
    "observe_endpoint",
    "pair_nodes",
    "probe_configured",
    "render_node_configs",
]


@dataclass(frozen=True)
class ClusterEndpoint:
    host: str
    cert_sans: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"https://{self.host}:6443"


def pair_nodes(desired: Sequence[DesiredServer], servers: Sequence[Server]) -> list[Node]:
    """The desired servers that exist, as ``Node``s, in desired order."""
    by_name = {s.name: s for s in servers}
    return [Node(d, by_name[d.name]) for d in desired if d.name in by_name]


def cluster_endpoint(lb: LoadBalancer | None, control_planes: Sequence[Node]) -> ClusterEndpoint:
    """The endpoint and SANs from the LB (if any) and the control planes (first = lowest)."""
    if not control_planes:
        raise NotFoundError("the cluster has no control plane server yet")
    sans: list[str] = []
    if lb is not None:
        if not lb.public_ipv4:
            raise NotFoundError(f"load balancer {lb.name} has no public IPv4 yet")
        sans.append(lb.public_ipv4)
    for node in control_planes:
        sans.append(node.address)
        if node.private_ip:
            sans.append(node.private_ip)
    host = lb.public_ipv4 if lb is not None else control_planes[0].address
    assert host is not None
    return ClusterEndpoint(host, tuple(dict.fromkeys(sans)))


async def observe_endpoint(
    hcloud: HcloudPort,
    config: ClusterConfig,
    nodes: Sequence[Node],
    *,
    load_balancer: LoadBalancer | None = None,
) -> ClusterEndpoint:
    """The cluster endpoint and SANs, from the API load balancer (if enabled) and the CPs.

    ``load_balancer``: the API load balancer as this run already knows it (``create`` after
    its apply); without it, it is looked up by name.
    """
    lb: LoadBalancer | None = None
    if config.load_balancer.enabled:
        known = [load_balancer] if load_balancer is not None else []
        found = known or await hcloud.list_load_balancers(name=f"{config.name}-api")
        if not found:
            raise NotFoundError(
                f"load balancer {config.name}-api does not exist", hint="run `hk8s create`"
            )
        lb = found[0]
    return cluster_endpoint(lb, [n for n in nodes if n.desired.control_plane])


def config_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def render_node_configs(
    config: ClusterConfig,
    bundle: SecretsBundle,
    nodes: Sequence[Node],
    endpoint: ClusterEndpoint,
    *,
    schematic: str | None,
) -> dict[str, bytes]:
    """Each node's machine config, by node name."""
    pools = {p.name: p for p in config.pools()}
    return {
        node.name: render_machine_config(
            config,
            bundle,
            pools[node.desired.pool],
            endpoint=endpoint.host,
            hostname=node.name,
            cert_sans=endpoint.cert_sans,
            schematic=schematic,
        ).encode()
        for node in nodes
    }


async def probe_configured(talos: TalosNodeAPI, node: Node) -> bool:
    """True: the node answers over mTLS (configured); False: only in maintenance mode.

    Raises a retryable error while it answers neither way (booting, rebooting).
    """
    try:
        await talos.version(node.address)
        return True
    except AuthError as exc:
        raise SecretsError(
            f"node {node.name} refuses this cluster's client certificate: it was configured "
            "with another secrets bundle",
            hint="use the secrets.yaml the cluster was created with",
        ) from exc
    except Hk8sError as exc:
        if not exc.retryable:
            raise
    try:
        await talos.version(node.address, maintenance=True)
    except MaintenanceModeError:
        # Maintenance mode serves only ApplyConfiguration, Disks and read-only COSI and
        # answers Unimplemented otherwise (talos internal/app/maintenance/server.go): that
        # answer is the sign we are looking for.
        return False
    except AuthError as exc:
        # Configured (it wants a client certificate), but mTLS did not answer yet: rebooting.
        raise UnavailableError(f"{node.name} is configured but not answering mTLS yet") from exc
    return False


async def configure_nodes(
    hcloud: HcloudPort,
    talos: TalosNodeAPI,
    probe: TalosNodeAPI,
    waiter: Waiter,
    nodes: Sequence[Node],
    configs: dict[str, bytes],
    *,
    concurrency: int = 16,
    stuck: list[str] | None = None,
    on_configured: Callable[[Node], None] | None = None,
) -> list[str]:
    """Apply configs to the nodes that need one, concurrently; returns their names.

    ``concurrency`` bounds the Talos calls in flight, not the waits: a node still booting
    holds no slot while the others are configured. ``on_configured(node)`` is called as soon
    as a node has its config (applied now, or already current), so that the etcd bootstrap
    can start on the first control plane while the rest are still being configured.

    With ``stuck`` given, a node whose Talos API does not answer within the boot timeout is
    added to it (and named in a warning) instead of failing the whole phase: the caller
    decides whether it can go on without it (``create``: any worker; a control plane if
    another one answers and the stuck one is not the cluster endpoint) and names it at the
    end. A change Talos can only apply with a reboot is applied one node at a time after the
    others (``_node_reboots``).
    """
    limit = asyncio.Semaphore(concurrency)
    applied: list[str] = []
    rebooting: list[Node] = []

    def configured_now(node: Node) -> None:
        if on_configured is not None:
            on_configured(node)

    async def send(node: Node, *, maintenance: bool) -> ApplyResult:
        async with limit:
            return await talos.apply_config(
                node.address, configs[node.name], ApplyMode.AUTO, maintenance=maintenance
            )

    async def apply(node: Node, *, maintenance: bool = False) -> str:
        return await applied_with(node, await send(node, maintenance=maintenance), maintenance)

    async def applied_with(node: Node, result: ApplyResult, maintenance: bool) -> str:
        data = configs[node.name]
        configured_now(node)
        labels = {**node.server.labels, CONFIG_HASH_LABEL: config_hash(data)}
        await hcloud.set_labels("server", node.server.id, labels)
        applied.append(node.name)
        return "maintenance mode" if maintenance else f"mTLS, {result.mode.value}"

    async def one(node: Node) -> None:
        data = configs[node.name]
        key = f"node/{node.name}"
        if node.server.labels.get(CONFIG_HASH_LABEL) == config_hash(data):
            # Labelled as configured: done, unless the node still answers in maintenance
            # mode (it took the config but never installed it, or was reset since): then
            # the config is sent again instead of waiting for it forever.
            try:
                async with limit:
                    in_maintenance = not await probe_configured(probe, node)
            except Hk8sError:
                in_maintenance = False  # not answering right now (rebooting): later phases wait
            if not in_maintenance:
                configured_now(node)
                return
            waiter.info(key, f"{node.name} is still in maintenance mode: sending its config again")
        failures = 0
        while True:
            how = await configure(node, key)
            if how is None:
                return
            if isinstance(how, str):
                waiter.done(key, f"apply machine config to {node.name}", how)
                return
            # A Talos call that failed on the way (a timeout, a dropped connection) may have
            # reached the node: ask it again which config it runs before sending one, so a
            # config it took is not resent over the maintenance connection it now refuses.
            failures += 1
            if failures >= waiter.timing.retry_attempts:
                raise how
            waiter.info(key, f"{node.name}: {how.message}", "asking the node again")
            await waiter.clock.sleep(waiter.timing.retry_delay(failures))

    async def configure(node: Node, key: str) -> str | Hk8sError | None:
        """Wait for the node to answer, then apply its config: how it was applied; None if
        there is nothing more to do here (stuck, or its reboot comes later); a retryable error
        of the Talos calls."""
        state: dict[str, bool] = {}

        async def answers() -> tuple[bool, str]:
            async with limit:
                state["configured"] = await probe_configured(probe, node)
            return True, ""

        try:
            await waiter.until(
                key,
                f"Talos API of {node.name} to answer",
                answers,
                timeout=waiter.timing.boot_timeout,
            )
        except WaitTimeoutError:
            if stuck is None:
                raise
            stuck.append(node.name)
            waiter.reporter.emit(
                ProgressEvent("warning", key, f"{node.name} does not answer: going on without it")
            )
            return None
        configured = state["configured"]
        waiter.step(key, f"apply machine config to {node.name}")
        try:
            if configured:
                async with limit:
                    dry = await talos.apply_config(
                        node.address, configs[node.name], ApplyMode.AUTO, dry_run=True
                    )
                if dry.mode is ApplyMode.REBOOT:
                    rebooting.append(node)  # see _node_reboots: one at a time, later
                    return None
            result = await send(node, maintenance=not configured)
        except Hk8sError as exc:
            if not exc.retryable:
                raise
            return exc
        return await applied_with(node, result, not configured)

    for node in nodes:
        if node.server.labels.get(CONFIG_HASH_LABEL) != config_hash(configs[node.name]):
            waiter.plan(f"node/{node.name}", f"apply machine config to {node.name}")
    outcomes = await asyncio.gather(*(one(n) for n in nodes), return_exceptions=True)
    if not any(isinstance(e, BaseException) for e in outcomes) and rebooting:
        await reboot_one_at_a_time(probe, waiter, rebooting, apply)
    errors = [e for e in outcomes if isinstance(e, BaseException)]
    for error in errors:
        if not isinstance(error, Exception):
            raise error  # cancellation, KeyboardInterrupt
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise OperationsFailedError("machine configs", errors)
    return sorted(applied)
