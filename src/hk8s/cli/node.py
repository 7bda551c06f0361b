"""``hk8s node reboot|reset|replace NAME``: act on one node, keeping etcd's quorum.

``reboot`` drains, reboots and gates on health; ``reset`` wipes the node back to maintenance
mode (a control plane leaves etcd first), and ``hk8s create`` configures it again; ``replace``
deletes the server (etcd membership handled) and runs ``create`` to make a fresh one. Each
refuses, before changing anything, when it would break etcd quorum (exit 2). ``reset`` and
``replace`` ask for the node's name to be typed (``--yes`` for CI), like ``destroy``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output
from hk8s.cli.create import OutputOption, SecretsPath, beside, kube_factory, talos_factory

if TYPE_CHECKING:
    from hk8s.controller import NodeAction

__all__ = ["register"]

group = typer.Typer(
    name="node",
    help="Reboot, reset or replace one node without breaking etcd quorum.",
    no_args_is_help=True,
)

NodeName = Annotated[str, typer.Argument(help="The node (server) name, e.g. demo-cp-2.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for the node's name.")]


def _confirm(action: str, name: str, yes: bool) -> None:
    from hk8s.errors import UsageError

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"{action} asks for the node name to be typed, but stdin is not a terminal",
            hint=f"pass --yes to {action} {name} without asking (CI)",
        )
    typed = typer.prompt(f"Type the node name ({name}) to {action} it", default="", err=True)
    if typed.strip() != name:
        typer.echo(f"the name does not match; nothing was changed ({action})", err=True)
        raise typer.Abort()


def _act(
    ctx: typer.Context,
    action: NodeAction,
    name: str,
    file: Path,
    token: str | None,
    secrets: Path | None,
    output: OutputOption,
) -> None:
    import asyncio

    import yaml

    from hk8s.cli._progress import progress
    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.controller import NodeOps, Waiter, observe_access

    out = Output.of(ctx, output)
    config = load_config(file)
    provider = connect(token)
    factory = talos_factory(provider)

    async def run() -> None:
        try:
            access = await observe_access(provider, config, beside(file, secrets, "secrets.yaml"))
            talos, probe = factory(access.bundle)
            kube = kube_factory(provider)(yaml.safe_load(access.kubeconfig()))
            try:
                with progress(out) as reporter:
                    waiter = Waiter(provider.clock, provider.timing, reporter)
                    ops = NodeOps(provider, talos, probe, kube, waiter, access.nodes)
                    await getattr(ops, action)(name)
            finally:
                await kube.close()
        finally:
            await factory.aclose()

    try:
        asyncio.run(run())
    finally:
        provider.close()


@group.command("reboot")
def reboot(
    ctx: typer.Context,
    name: NodeName,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
) -> None:
    """Drain, reboot and wait until the node and the cluster are healthy again."""
    _act(ctx, "reboot", name, file, token, secrets, output)
    Output.of(ctx, output).result(
        {"node": name, "action": "reboot", "healthy": True},
        f"{name} rebooted; the cluster is healthy",
    )


@group.command("reset")
def reset(
    ctx: typer.Context,
    name: NodeName,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    yes: Yes = False,
    output: OutputOption = None,
) -> None:
    """Wipe the node back to maintenance mode (control planes leave etcd first)."""
    _confirm("reset", name, yes)
    _act(ctx, "reset", name, file, token, secrets, output)
    Output.of(ctx, output).result(
        {"node": name, "action": "reset", "maintenance": True},
        f"{name} is wiped and in maintenance mode; `hk8s create -f {file}` configures it again",
    )


@group.command("replace")
def replace(
    ctx: typer.Context,
    name: NodeName,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    yes: Yes = False,
    output: OutputOption = None,
) -> None:
    """Delete the node's server (etcd membership handled), then create a fresh one."""
    from hk8s.cli.create import create

    _confirm("replace", name, yes)
    _act(ctx, "replace", name, file, token, secrets, output)
    out = Output.of(ctx, output)
    out.info(f"{name}: server deleted; creating its replacement")
    # create prints the result (one JSON document with -o json): the cluster it converged.
    create(ctx, file=file, token=token, secrets=secrets, output=output)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
