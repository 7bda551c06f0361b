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
    from hk8s.controller import Component, Plan
    from hk8s.providers.hcloud import HcloudProvider

__all__ = ["register", "render_plan"]

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
    from hk8s.cli.infra import connect, infra_components
    from hk8s.config import load_config
    from hk8s.controller import Reconciler

    out = Output.of(ctx, output)
    if destroy:
        from hk8s.cli.destroy import preview_destroy

        raise typer.Exit(preview_destroy(out, file, token, images=images))
    config = load_config(file)
    provider = connect(token)

    async def run() -> tuple[Plan, list[str]]:
        components = await infra_components(config, provider)
        if servers:
            components.append(_servers(config, provider, file))
        reconciler = Reconciler(components)
        return await reconciler.plan(), reconciler.warnings()

    try:
        result, warnings = asyncio.run(run())
    finally:
        provider.close()
    for warning in warnings:
        out.warn(warning)
    out.result({"cluster": config.name, **result.to_dict(), "warnings": warnings},
               render_plan(result, config.name))  # fmt: skip
    raise typer.Exit(EXIT_OK if result.empty else EXIT_PLAN_HAS_CHANGES)


def _servers(config: ClusterConfig, provider: HcloudProvider, file: Path) -> Component:
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


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
