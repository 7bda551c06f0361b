"""The ``hk8s`` Typer app: global options and the command registry.

Each command lives in its own module under ``hk8s.cli`` with a ``register(app)`` function, and
is listed once in ``COMMANDS``. Command modules import only typer and hk8s' light modules at
the top; anything heavy (pydantic models, hcloud, grpclib, kubernetes, rich) is imported
inside the command function, so ``hk8s --help`` stays fast (tests/unit/cli/test_startup.py).
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from hk8s.cli._output import Output, OutputMode

__all__ = ["COMMANDS", "build_app"]

# Registration order is the order in ``hk8s --help``. Add one line per command module.
COMMANDS: tuple[str, ...] = (
    "hk8s.cli.create",
    "hk8s.cli.image",
    "hk8s.cli.infra",
    "hk8s.cli.plan",
    "hk8s.cli.upgrade",
    "hk8s.cli.destroy",
    "hk8s.cli.health",
    "hk8s.cli.kubeconfig",
    "hk8s.cli.talosconfig",
    "hk8s.cli.config",
    "hk8s.cli.version",
    "hk8s.cli.sim",
)

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


def build_app() -> typer.Typer:
    """The app with every registered command."""
    app = typer.Typer(
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
    for name in COMMANDS:
        importlib.import_module(name).register(app)
    return app
