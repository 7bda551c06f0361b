"""``hk8s version``: what runs, for bug reports; ``--matrix``: which versions work together."""

from __future__ import annotations

import platform
import sys
from typing import Annotated, Any

import typer

import hk8s
from hk8s.cli._output import Output, OutputMode

__all__ = ["register", "render_matrix"]


def version(
    ctx: typer.Context,
    matrix: Annotated[
        bool,
        typer.Option(
            "--matrix",
            help="Print the version matrix: Talos and Kubernetes versions, addon charts, "
            "the defaults, and where each fact comes from.",
        ),
    ] = False,
    output: Annotated[
        OutputMode | None,
        typer.Option("--output", "-o", help="Same as the global --output, after the command."),
    ] = None,
) -> None:
    """Print the hk8s version."""
    out = Output.of(ctx, output)
    if matrix:
        # Imported here: the config package loads pydantic, which plain `version` never needs.
        from hk8s.config import matrix_data

        data = matrix_data()
        out.result(data, render_matrix(data))
        return
    python = platform.python_version()
    system = f"{sys.platform}-{platform.machine()}"
    out.result(
        {"version": hk8s.__version__, "python": python, "platform": system},
        f"hk8s {hk8s.__version__} (python {python}, {system})",
    )


def render_matrix(data: dict[str, Any]) -> str:
    """The matrix as tables for people; the JSON carries the same facts."""
    defaults = data["defaults"]
    lines = [
        f"defaults: Talos {defaults['talos']}, Kubernetes "
        + ", ".join(f"{k} (Talos {m})" for m, k in defaults["kubernetes"].items())
        + f"; helm image {defaults['helm_image']}",
        "",
        "TALOS  KUBERNETES   UPGRADE FROM  DEFAULT KUBERNETES  SOURCE",
    ]
    for r in data["talos"]:
        kube = f"{r['kubernetes']['min']}-{r['kubernetes']['max']}"
        lines.append(
            f"{r['minor']:<6} {kube:<12} {r['upgrade_from']:<13} "
            f"{r['default_kubernetes']:<19} {r['source']}"
        )
    lines += ["", "ADDON           CHART RELEASES    KUBERNETES  DEFAULT  SOURCE"]
    for c in data["charts"]:
        k = c["kubernetes"]
        kube = f"{k['min']}-{k['max']}" if k["max"] else f"{k['min']}+"
        default = "*" if defaults["charts"].get(c["addon"]) == c["last"] else ""
        releases = f"{c['first']}..{c['last']}"
        lines.append(f"{c['addon']:<15} {releases:<17} {kube:<11} {default:<8} {c['source']}")
    lines.append("")
    for m in data["minimums"]:
        lines.append(f"minimum {m['addon']} {m['version']}: {m['reason']} ({m['source']})")
    lines.append("Chart releases newer than listed are not checked.")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("version")(version)
