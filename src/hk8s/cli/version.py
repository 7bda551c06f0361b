"""``hk8s version``: what is running, for bug reports."""

from __future__ import annotations

import platform
import sys

import typer  # noqa: TC002 (typer reads the annotations at runtime)

import hk8s
from hk8s.cli._output import Output

__all__ = ["register"]


def version(ctx: typer.Context) -> None:
    """Print the hk8s version."""
    python = platform.python_version()
    system = f"{sys.platform}-{platform.machine()}"
    Output.of(ctx).result(
        {"version": hk8s.__version__, "python": python, "platform": system},
        f"hk8s {hk8s.__version__} (python {python}, {system})",
    )


def register(app: typer.Typer) -> None:
    app.command("version")(version)
