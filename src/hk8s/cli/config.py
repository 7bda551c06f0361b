"""``hk8s config validate|schema``: check a cluster.yaml; print its JSON Schema for editors."""

from __future__ import annotations

import json
from pathlib import Path

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile  # noqa: TC001
from hk8s.cli._output import Output

__all__ = ["register"]

group = typer.Typer(
    name="config",
    help="Validate cluster.yaml files and print their JSON Schema.",
    no_args_is_help=True,
)


# `config validate` needs no token: it cannot know what Hetzner sells right now.
OFFLINE_NOTE = (
    "checked offline; whether Hetzner sells these server and load balancer types in these "
    "locations right now is checked against the API by `hk8s plan` (and create, infra)"
)


@group.command("validate")
def validate(ctx: typer.Context, file: ConfigFile = Path("cluster.yaml")) -> None:
    """Check a config and report every problem with its line; exit 2 if invalid.

    Also renders every pool's Talos machine config, so patches are checked against the
    configured Talos version's config format.
    """
    from hk8s.config import load_config
    from hk8s.machineconfig import check_machine_configs

    config = load_config(file)
    # Patches are checked where they apply: in the machine configs of the configured Talos.
    check_machine_configs(config)
    workers = ", ".join(f"{p.name} {p.count}x {p.server_type}" for p in config.pools()[1:])
    lb = config.load_balancer
    text = (
        f"{file}: valid\n"
        f"  cluster        {config.name} in {config.location} ({config.network_zone})\n"
        f"  talos          {config.talos.version}, kubernetes {config.kubernetes.version}\n"
        f"  control plane  {config.control_plane.count}x {config.control_plane.server_type}"
        f"{', load balancer ' + lb.type if lb.enabled else ''}\n"
        f"  workers        {workers or 'none'}\n"
        f"note: {OFFLINE_NOTE}"
    )
    Output.of(ctx).result(
        {
            "file": str(file),
            "valid": True,
            "config": config.model_dump(mode="json"),
            "note": OFFLINE_NOTE,
        },
        text,
    )


@group.command("schema")
def schema() -> None:
    """Print the JSON Schema of cluster.yaml (for yaml-language-server and other editors)."""
    from hk8s.config import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(group)
