"""``hk8s talosconfig``: write a talosconfig for the cluster (0600).

A fresh admin client certificate from the secrets bundle's OS CA; endpoints are the control
planes' public IPs as the Hetzner API reports them now.
"""

from __future__ import annotations

from pathlib import Path

import typer  # noqa: TC002 - Typer reads typer.Context at runtime

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output
from hk8s.cli.create import OutputOption, SecretsPath, beside
from hk8s.cli.kubeconfig import OutputPath, access

__all__ = ["register"]


def talosconfig(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
    path: OutputPath = None,
) -> None:
    """Write a talosconfig for the cluster (mode 0600)."""
    from hk8s.cli._env import check_writable
    from hk8s.pki import write_talosconfig

    out = Output.of(ctx, output)
    check_writable(beside(file, path, "talosconfig"), "--path")
    config, found = access(file, token, secrets)
    identity = found.talosconfig()
    target = write_talosconfig(beside(file, path, "talosconfig"), identity)
    out.result(
        {"cluster": config.name, "talosconfig": str(target), "endpoints": list(identity.endpoints)},
        f"wrote {target} (endpoints {', '.join(identity.endpoints)})",
    )


def register(app: typer.Typer) -> None:
    app.command("talosconfig")(talosconfig)
