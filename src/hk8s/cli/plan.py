"""``hk8s plan``: what ``infra``/``create`` would create, change and delete, and why.

Touches nothing. Exit code 0 = nothing to do, 3 = changes pending (for CI), 1/2 = errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output, OutputMode

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig
    from hk8s.controller import ClusterAccess, ClusterProbe, Component, Plan, ServersComponent
    from hk8s.errors import Hk8sError
    from hk8s.providers.hcloud import HcloudProvider
    from hk8s.providers.k8s import KubernetesAPI

__all__ = ["register", "render_plan", "servers_component"]

# The health probe's bound in requests' time: etcd, services, the Kubernetes checks.
PROBE_REQUESTS = 4

_STYLE = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


def render_plan(plan: Plan, cluster: str) -> str:
    """The plan for people: grouped by resource kind, one coloured line per operation."""
    if plan.empty:
        return f"cluster {cluster}: nothing to do, everything matches the config"
    lines: list[str] = []
    for kind, ops in plan.by_kind():
        lines.append(typer.style(f"{kind}:", bold=True))
        for op in ops:
            mark, color = _STYLE[op.type]
            head = typer.style(f"  {mark} {op.type} {op.name}", fg=color)
            lines.append(f"{head}  ({op.reason})")
            lines.extend(f"      {change}" for change in op.changes)
    counts = plan.counts()
    lines.append(
        f"cluster {cluster}: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['delete']} to delete"
    )
    return "\n".join(lines)


def plan(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    output: Annotated[
        OutputMode | None,
        typer.Option("--output", "-o", help="Same as the global --output, after the command."),
    ] = None,
    destroy: Annotated[
        bool, typer.Option("--destroy", help="Show what hk8s destroy would delete instead.")
    ] = False,
    images: Annotated[
        bool, typer.Option("--images", help="With --destroy: as destroy --images.")
    ] = False,
    servers: Annotated[
        bool,
        typer.Option(
            "--servers/--infra-only",
            help="Plan the servers create would add or remove too (scale-ups, and "
            "scale-downs, which drain first), or only what `hk8s infra` would change.",
        ),
    ] = True,
) -> None:
    """Show what would change, and why; change nothing.

    Exit code 0 when everything matches the config, 3 when changes are pending.
    """
    import asyncio

    from hk8s.cli._main import EXIT_OK, EXIT_PLAN_HAS_CHANGES
    from hk8s.cli.create import beside
    from hk8s.cli.infra import check_against_api, connect, infra_components
    from hk8s.config import load_config
    from hk8s.controller import Reconciler, pending_servers

    out = Output.of(ctx, output)
    _check_flags(ctx, destroy=destroy, images=images)
    if destroy:
        from hk8s.cli.destroy import preview_destroy

        raise typer.Exit(preview_destroy(out, file, token, images=images))
    config = load_config(file)
    provider = connect(token)

    async def run() -> tuple[Plan, list[str], list[str], ClusterProbe | None]:
        checked = await check_against_api(config, provider, out, file)
        components = await infra_components(config, provider)
        nodes = servers_component(config, provider, file) if servers else None
        access = _Access(config, provider, beside(file, None, "secrets.yaml"))
        if nodes is not None:
            components += [nodes, _addons(config, provider, access)]
        reconciler = Reconciler(components)
        result = await reconciler.plan()
        pending = pending_servers(nodes.desired, nodes.observed) if nodes is not None else []
        health = None
        if nodes is not None:
            # Each pending server line starts with its name: said once, not twice; a server
            # the plan removes is no finding either (its node and etcd member go with it).
            known = {line.split(":", 1)[0] for line in pending}
            known |= {op.name for op in result.operations if op.kind == "server"}
            health = await _probe_health(provider, access, known)
        return result, checked + reconciler.warnings(), pending, health

    try:
        result, warnings, pending, health = asyncio.run(run())
    finally:
        provider.close()
    for warning in warnings:
        out.warn(warning)
    findings = [str(f) for f in health.findings] if health is not None else []
    work = len(pending) + len(findings)
    text = render_plan(result, config.name) if not (result.empty and work) else ""
    sections = []
    if pending:
        sections.append(typer.style("servers not yet converged (hk8s create finishes them):",
                                    bold=True))  # fmt: skip
        sections.extend(f"  ~ {item}" for item in pending)
    if findings:
        sections.append(typer.style("cluster health (probed read-only; hk8s create acts on it):",
                                    bold=True))  # fmt: skip
        sections.extend(f"  ! {item}" for item in findings)
    if sections:
        text = "\n".join([*([text] if text else []), *sections])
        if result.empty:
            text += f"\ncluster {config.name}: {work} pending step(s) for hk8s create"
    out.result({"cluster": config.name, **result.to_dict(), "pending": pending + findings,
                "health": health.to_dict() if health is not None else None,
                "warnings": warnings}, text)  # fmt: skip
    done = result.empty and not work
    raise typer.Exit(EXIT_OK if done else EXIT_PLAN_HAS_CHANGES)


def _check_flags(ctx: typer.Context, *, destroy: bool, images: bool) -> None:
    """Flags that only mean something together are refused apart, never silently ignored."""
    from hk8s.errors import UsageError

    if images and not destroy:
        raise UsageError(
            "--images applies to plan --destroy only",
            hint="run hk8s plan --destroy --images, or drop --images",
        )
    given = ctx.get_parameter_source("servers")
    if destroy and given is not None and given.name != "DEFAULT":
        raise UsageError(
            "--servers/--infra-only do not apply to plan --destroy (it lists everything)",
            hint="drop --servers/--infra-only, or drop --destroy",
        )


def servers_component(
    config: ClusterConfig, provider: HcloudProvider, file: Path
) -> ServersComponent:
    """The servers component ``create`` reconciles (creates, and drained removals)."""
    from hk8s.cli.create import beside
    from hk8s.controller import ServersComponent

    # The cluster id only labels new servers; before the first create there is none yet.
    path = beside(file, None, "secrets.yaml")
    cluster_id = ""
    if path.exists():
        from hk8s.pki import load_secrets  # cryptography: only when there are secrets to read

        cluster_id = load_secrets(path).cluster_id
    return ServersComponent(provider, config, cluster_id=cluster_id)


class _Access:
    """How to reach the cluster (``observe_access``), observed once for the addons and the
    health probe alike; None while the cluster has no servers."""

    def __init__(self, config: ClusterConfig, provider: HcloudProvider, secrets: Path) -> None:
        import asyncio

        self._config, self._provider, self._secrets = config, provider, secrets
        self._lock = asyncio.Lock()
        self._found: list[ClusterAccess | None] = []
        self._error: Hk8sError | None = None

    async def get(self) -> ClusterAccess | None:
        from hk8s.errors import Hk8sError

        async with self._lock:
            if not self._found and self._error is None:
                try:
                    self._found.append(await self._observe())
                except Hk8sError as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._found[0]

    async def _observe(self) -> ClusterAccess | None:
        from hk8s.controller import server_selector

        found = await self._provider.list_servers(server_selector(self._config.name))
        if not found:
            return None  # no servers yet: addons and health come with `create`
        # Imported only for a cluster that exists: planning a new one needs neither the
        # Kubernetes nor the Talos client (tests/unit/cli/test_startup.py keeps it so).
        from hk8s.controller import observe_access

        return await observe_access(self._provider, self._config, self._secrets, servers=found)


def _addons(config: ClusterConfig, provider: HcloudProvider, access: _Access) -> Component:
    """The addon chart versions ``create`` would install or upgrade on a running cluster."""

    from hk8s.cli.create import kube_client
    from hk8s.controller import AddonsComponent

    async def connect() -> KubernetesAPI | None:
        from hk8s.errors import NotFoundError

        try:
            found = await access.get()
        except NotFoundError:
            return None  # no control plane server yet: the addons come with `create`
        return kube_client(provider, found.kubeconfig(), once=True) if found else None

    return AddonsComponent(config, connect)


async def _probe_health(
    provider: HcloudProvider, access: _Access, known: set[str]
) -> ClusterProbe | None:
    """The cluster's health, probed read-only within a bound, as findings per node; None
    while no server has a machine config (its servers are pending work already)."""
    from hk8s.errors import Hk8sError

    try:
        found = await access.get()
    except Hk8sError as exc:
        from hk8s.controller import ClusterProbe

        return ClusterProbe.unchecked(exc.message)
    if found is None:
        return None  # no servers: nothing to probe (and no Talos/Kubernetes client to import)
    from hk8s.controller import CONFIG_HASH_LABEL, HealthLimits, probe_cluster

    if not any(
        n.server.status == "running" and CONFIG_HASH_LABEL in n.server.labels for n in found.nodes
    ):
        return None
    from hk8s.cli.create import kube_client, talos_nodes

    talos = talos_nodes(provider, found.talosconfig(), once=True)
    kube = kube_client(provider, found.kubeconfig(), once=True)
    # One request's time per node (the transports' floor: 2 s), the probe a few of them.
    budget = max(2.0, provider.timing.request_timeout)
    try:
        return await probe_cluster(talos, kube, found.nodes, limits=HealthLimits(budget=budget),
                                   within=PROBE_REQUESTS * budget, known=known)  # fmt: skip
    finally:
        await talos.aclose()
        await kube.close()


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
