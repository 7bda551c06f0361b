"""``hk8s health``: the checks ``create`` gates on, run once (like ``talosctl health``).

Exit code 0 when every check passes, 1 otherwise; ``-o json`` gives one object per check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output
from hk8s.cli.create import OutputOption, SecretsPath, beside

if TYPE_CHECKING:
    from hk8s.controller import HealthCheck

__all__ = ["register", "render_checks"]


def render_checks(checks: list[HealthCheck]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        mark = typer.style("ok  ", fg="green") if check.ok else typer.style("FAIL", fg="red")
        lines.append(f"{mark} {check.name.ljust(width)}  {check.detail}")
    return "\n".join(lines)


def health(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
) -> None:
    """Check etcd, Talos services, nodes and control-plane pods; exit 1 if any fails."""
    import asyncio

    from hk8s.cli._main import EXIT_FAILED, EXIT_OK
    from hk8s.cli.create import kube_client, talos_nodes
    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.controller import check_health, observe_access

    out = Output.of(ctx, output)
    config = load_config(file)
    provider = connect(token)

    async def run() -> list[HealthCheck]:
        found = await observe_access(provider, config, beside(file, secrets, "secrets.yaml"))
        talos = talos_nodes(provider, found.talosconfig(), once=True)
        kube = kube_client(provider, found.kubeconfig(), once=True)
        try:
            return await check_health(talos, kube, found.nodes)
        finally:
            await talos.aclose()
            await kube.close()

    try:
        checks = asyncio.run(run())
    finally:
        provider.close()
    healthy = all(c.ok for c in checks)
    out.result(
        {"cluster": config.name, "healthy": healthy, "checks": [c.to_dict() for c in checks]},
        render_checks(checks),
    )
    raise typer.Exit(EXIT_OK if healthy else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("health")(health)
