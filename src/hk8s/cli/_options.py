"""Options shared by several commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ConfigFile", "Token"]

ConfigFile = Annotated[
    Path,
    typer.Option(
        "-f",
        "--file",
        help="The cluster config (cluster.yaml).",
        dir_okay=False,
        show_default=True,
    ),
]

# The token is read from the environment (or the flag), never from cluster.yaml, and its value
# is never shown: show_default stays off.
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="HCLOUD_TOKEN",
        show_envvar=True,
        show_default=False,
        help="Hetzner Cloud API token.",
    ),
]
