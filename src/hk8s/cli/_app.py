"""The ``hk8s`` Typer app: global options and the command registry.

Each command lives in its own module under ``hk8s.cli`` with a ``register(app)`` function, and
is listed once in ``COMMANDS`` with the one line ``hk8s --help`` shows for it. The root group
builds a command only when it runs (``LazyGroup``): inspecting every command's signature costs
more than half of the start-up budget, and ``hk8s --help`` needs none of them. Command modules
import only typer and hk8s' light modules at the top; anything heavy is imported inside the
command function (tests/unit/cli/test_startup.py).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from hk8s.cli._output import Output, OutputMode

__all__ = ["COMMANDS", "LazyGroup", "build_app", "load_command"]

# Command name -> (module, its line in ``hk8s --help``), in help order. Add one line per
# command module; tests/unit/cli/test_app.py checks each line against the command's docstring.
COMMANDS: dict[str, tuple[str, str]] = {
    "create": (
        "hk8s.cli.create",
        "Create or converge the cluster: infra, servers, Talos, etcd, addons, health.",
    ),
    "plan": ("hk8s.cli.plan", "Show what would change, and why; change nothing."),
    "infra": (
        "hk8s.cli.infra",
        "Create or update the network, firewall, placement groups and API load balancer.",
    ),
    "image": (
        "hk8s.cli.image",
        "Build, list and prune the Talos snapshots cluster servers boot from.",
    ),
    "upgrade": (
        "hk8s.cli.upgrade",
        "Rolling Talos and/or Kubernetes upgrade to the versions in cluster.yaml.",
    ),
    "destroy": (
        "hk8s.cli.destroy",
        "Delete everything the cluster owns on Hetzner Cloud, in dependency order.",
    ),
    "status": (
        "hk8s.cli.status",
        "Show the cluster on one screen: servers, versions, etcd, endpoint, addons, plan.",
    ),
    "doctor": (
        "hk8s.cli.doctor",
        "Read-only checks: versions, certificates, etcd, firewall, orphans; exit 1 on problems.",
    ),
    "etcd": (
        "hk8s.cli.etcd",
        "Save (snapshot) and restore the cluster's etcd through the Talos API.",
    ),
    "health": (
        "hk8s.cli.health",
        "Check etcd, Talos services, nodes and control-plane pods; exit 1 if any fails.",
    ),
    "node": (
        "hk8s.cli.node",
        "Reboot, reset or replace one node without breaking etcd quorum.",
    ),
    "kubeconfig": (
        "hk8s.cli.kubeconfig",
        "Write an admin kubeconfig for the cluster (mode 0600).",
    ),
    "talosconfig": ("hk8s.cli.talosconfig", "Write a talosconfig for the cluster (mode 0600)."),
    "config": ("hk8s.cli.config", "Validate cluster.yaml files and print their JSON Schema."),
    "sim": (
        "hk8s.cli.sim",
        "Run the built-in simulated Hetzner Cloud, Talos and Kubernetes world.",
    ),
    "version": ("hk8s.cli.version", "Print the hk8s version."),
}


def load_command(name: str) -> Any:
    """Build the (Typer-vendored click) command ``name``: imports its module, reads signatures."""
    module, _ = COMMANDS[name]
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)
    holder.callback()(lambda: None)  # a callback keeps it a group even with one command
    importlib.import_module(module).register(holder)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


class LazyGroup(TyperGroup):
    """The root group: lists ``COMMANDS`` from the table, builds one only when it is used."""

    # ctx/formatter are Typer's vendored click types, which typer does not export: Any.
    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS:
            if cmd_name not in self.commands:
                self.add_command(load_command(cmd_name), cmd_name)
            return self.commands[cmd_name]
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, short) for name, (_, short) in COMMANDS.items()]
        rows += [
            (name, command.get_short_help_str(formatter.width))
            for name, command in self.commands.items()
            if name not in COMMANDS
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


HELP = """\
Provision and operate Talos Linux Kubernetes clusters on Hetzner Cloud.

hk8s keeps no state file: resources are found by label, and every command reconciles the
world with cluster.yaml. The token comes from HCLOUD_TOKEN, never from the config file.
"""


def _configure(
    ctx: typer.Context,
    output: Annotated[
        OutputMode,
        typer.Option("--output", "-o", help="Result format: text for people, json for tools."),
    ] = OutputMode.text,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, show_default=False, help="More detail (repeat for more)."
        ),
    ] = 0,
    debug: Annotated[
        bool, typer.Option("--debug", help="Debug logging and tracebacks on errors.")
    ] = False,
) -> None:
    # main() passes a shared Output as ctx.obj so it can still report errors raised after
    # this callback ran; fill it in rather than replacing it.
    state = ctx.obj if isinstance(ctx.obj, Output) else Output()
    state.mode, state.verbose, state.debug = output, verbose, debug
    ctx.obj = state
    import logging  # not at the top: `hk8s --help` never gets here and need not pay for it

    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    from hk8s.cli._redact import install_log_redaction

    install_log_redaction()


def build_app() -> typer.Typer:
    """The app with every registered command."""
    app = typer.Typer(
        cls=LazyGroup,
        name="hk8s",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        # Plain click help: rich's import alone would cost most of the startup budget.
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_configure)
    return app
