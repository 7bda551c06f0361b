"""``hk8s status``: the cluster on one screen (servers, versions, etcd, endpoint, addons, plan).

Read-only, and meant for the moments something is wrong: a node that is off or a Kubernetes
API that does not answer shows up as a problem line, the rest is still shown. ``-o json`` gives
the same as one document. Exit code 0 whatever the cluster's state (``hk8s health`` is the
check that fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer  # noqa: TC002 - typer.Context is read at runtime by Typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output
from hk8s.cli.create import OutputOption, SecretsPath, beside, kube_client, talos_factory

if TYPE_CHECKING:
    from rich.console import RenderableType

    from hk8s.controller import ClusterStatus
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["register", "render_status"]

PLAN_LINES = 5  # pending operations listed; `hk8s plan` lists them all


def _mark(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    if value is None:
        return "[dim]?[/dim]"
    return f"[green]{yes}[/green]" if value else f"[red]{no}[/red]"


def _addon(name: str, addon: dict[str, str | None]) -> str:
    deployed, wanted = addon["deployed"], addon["wanted"]
    if deployed is None:
        return f"{name} [red]not installed[/red]"
    return f"{name} {deployed}" + (f" (config: {wanted})" if deployed != wanted else "")


def render_status(status: ClusterStatus) -> list[RenderableType]:
    """The status as rich renderables: a headline, the servers table, then the rest."""
    from rich.table import Table
    from rich.text import Text

    lb = status.load_balancer
    head = f"[bold]cluster {status.cluster}[/bold]  endpoint {status.endpoint or '[red]?[/red]'}"
    if lb is not None:
        head += f"  load balancer {lb['name']} ({lb['type']}, {lb['location']}) {lb['public_ipv4']}"
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("server", "pool", "role", "type", "location", "public IP", "private IP",
                   "hetzner", "talos", "kubernetes", "ready", "etcd"):  # fmt: skip
        table.add_column(column, no_wrap=True)
    for s in status.servers:
        hetzner = s.hetzner if s.hetzner == "running" else f"[red]{s.hetzner}[/red]"
        name = s.name if s.in_config else f"{s.name} [yellow](not in config)[/yellow]"
        talos = s.talos or "[red]down[/red]"
        etcd = _mark(s.etcd_member, "member", "no") if s.role == "control-plane" else ""
        table.add_row(
            name, s.pool, "cp" if s.role == "control-plane" else s.role, s.server_type,
            s.location, s.public_ipv4 or "-", s.private_ipv4 or "-", hetzner, talos,
            s.kubernetes or "[dim]?[/dim]", _mark(s.ready), etcd,
        )  # fmt: skip
    parts: list[RenderableType] = [Text.from_markup(head), table]
    if status.missing:
        parts.append(Text(f"not created yet: {', '.join(status.missing)}", style="yellow"))
    if status.etcd_members is not None:
        parts.append(Text(f"etcd members: {', '.join(status.etcd_members) or 'none'}"))
    if status.addons:
        addons = ", ".join(
            f"{name} {a['deployed'] or '[red]not installed[/red]'}"
            + (
                f" (config: {a['wanted']})"
                if a["deployed"] and a["deployed"] != a["wanted"]
                else ""
            )
            for name, a in status.addons.items()
        )
        parts.append(Text.from_markup(f"addons: {addons}"))
    if status.plan is not None:
        counts = status.plan.counts()
        plan = (
            "up to date"
            if status.plan.empty
            else f"{counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete (details: hk8s plan)"
        )
        parts.append(Text(f"plan: {plan}"))
        ops = status.plan.operations
        parts += [Text(f"  {op.type} {op.kind} {op.name} ({op.reason})") for op in ops[:PLAN_LINES]]
        if len(ops) > PLAN_LINES:
            parts.append(Text(f"  ... and {len(ops) - PLAN_LINES} more"))
    if status.problems:
        parts.append(Text(f"{len(status.problems)} problem(s):", style="bold red"))
        parts += [Text(f"  ! {p}", style="red") for p in status.problems]
    return parts


def status(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
) -> None:
    """Show the cluster on one screen: servers, versions, etcd, endpoint, addons, plan."""
    import asyncio
    from typing import Any

    from hk8s.cli.infra import connect, infra_components
    from hk8s.cli.plan import servers_component
    from hk8s.config import load_config
    from hk8s.controller import Reconciler, StatusPorts, observe_status

    out = Output.of(ctx, output)
    config = load_config(file)
    provider = connect(token)

    factory = talos_factory(provider)

    def talos(bundle: Any) -> TalosNodeAPI:
        return factory(bundle)[1]  # the client that tries once: a node that is down says so

    def kube(kubeconfig: Any) -> KubernetesAPI:
        return kube_client(provider, kubeconfig, once=True)

    async def plan() -> Any:
        components = await infra_components(config, provider)
        components.append(servers_component(config, provider, file))
        return await Reconciler(components).plan()

    async def run() -> ClusterStatus:
        ports = StatusPorts(hcloud=provider, talos=talos, kube=kube, plan=plan)
        try:
            return await observe_status(config, ports, beside(file, secrets, "secrets.yaml"))
        finally:
            await factory.aclose()

    try:
        found = asyncio.run(run())
    finally:
        provider.close()
    if out.json:
        out.result(found.to_dict())
        return
    import sys

    from rich.console import Console

    # A pipe or a log has no width: do not cut the table to rich's 80-column default.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    for part in render_status(found):
        console.print(part)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
