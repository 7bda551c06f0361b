"""``hk8s image build|list|prune``: the Talos snapshots servers boot from.

``build`` makes the snapshot(s) a config needs through a temporary server in rescue mode
(``hk8s.controller.ImageBuilds``); ``list`` shows every snapshot hk8s built; ``prune`` deletes
the ones no given config references and no server runs, after asking.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output, OutputMode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.controller import ImageBuilds, Reporter
    from hk8s.model.resources import Image
    from hk8s.providers.hcloud import HcloudProvider

__all__ = ["register"]

# ``hk8s image list --output json`` reads better than ``hk8s -o json image list``; both work.
OutputOption = Annotated[
    OutputMode | None,
    typer.Option("--output", "-o", help="Same as the global --output, after the command."),
]

group = typer.Typer(
    name="image",
    help="Build, list and prune the Talos snapshots cluster servers boot from.",
    no_args_is_help=True,
)


class ArchChoice(enum.StrEnum):
    amd64 = "amd64"
    arm64 = "arm64"
    all = "all"


def _output(ctx: typer.Context, output: OutputMode | None) -> Output:
    out = Output.of(ctx, output)
    return out


def _builds(provider: HcloudProvider, reporter: Reporter | None = None) -> ImageBuilds:
    from hk8s.controller import ImageBuilds, SchematicResolver, default_cache_file

    resolver = SchematicResolver(cache_file=default_cache_file())
    return ImageBuilds(
        provider,
        clock=provider.clock,
        timing=provider.timing,
        reporter=reporter,
        resolver=resolver,
    )


def _row(image: Image) -> dict[str, Any]:
    labels = image.labels
    return {
        "id": image.id,
        "arch": labels.get("arch", ""),
        "talos_version": labels.get("talos-version", ""),
        "schematic": labels.get("schematic", ""),
        "status": image.status,
        "created": image.created,
        "description": image.description,
    }


def _table(images: Sequence[Image]) -> str:
    header = ("ID", "ARCH", "TALOS", "SCHEMATIC", "STATUS", "CREATED")
    rows = [header] + [
        (
            str(r["id"]),
            r["arch"],
            r["talos_version"],
            r["schematic"][:12],
            r["status"],
            (r["created"] or "")[:19],
        )
        for r in map(_row, images)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@group.command("build")
def build(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    arch: Annotated[
        ArchChoice | None,
        typer.Option("--arch", help="Build only this architecture (default: what the pools use)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Rebuild even if the snapshot exists; replaces it."),
    ] = False,
    token: Token = None,
    output: OutputOption = None,
) -> None:
    """Build the Talos snapshot(s) for the config's version, schematic and architectures."""
    import asyncio

    from hk8s.cli._progress import progress
    from hk8s.cli.infra import check_against_api, connect
    from hk8s.config import load_config

    out = _output(ctx, output)
    config = load_config(file)
    provider = connect(token)
    archs: list[Any] | None = None
    if arch is not None:
        archs = ["amd64", "arm64"] if arch is ArchChoice.all else [arch.value]

    async def run() -> dict[str, Image]:
        await check_against_api(config, provider, out, file, purpose="image")
        with progress(out) as reporter:
            return await _builds(provider, reporter).ensure(config, archs=archs, force=force)

    try:
        images = asyncio.run(run())
    finally:
        provider.close()
    ordered = [images[a] for a in sorted(images)]
    text = "\n".join(
        f"{a:<6} snapshot {images[a].id}: {images[a].description}" for a in sorted(images)
    )
    out.result({"images": [_row(i) for i in ordered]}, text or "no snapshot needed")


@group.command("list")
def list_images(ctx: typer.Context, token: Token = None, output: OutputOption = None) -> None:
    """Show every Talos snapshot hk8s built in the project."""
    import asyncio

    from hk8s.cli.infra import connect

    out = _output(ctx, output)
    provider = connect(token)
    try:
        images = asyncio.run(_builds(provider).list_snapshots())
    finally:
        provider.close()
    text = _table(images) if images else "no Talos snapshots built by hk8s"
    out.result({"images": [_row(i) for i in images]}, text)


@group.command("prune")
def prune(
    ctx: typer.Context,
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "-f",
            "--file",
            dir_okay=False,
            help="A cluster config whose snapshots are kept (repeatable).",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    token: Token = None,
    output: OutputOption = None,
) -> None:
    """Delete snapshots no given config references (snapshots servers run are kept)."""
    import asyncio
    import sys

    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.errors import UsageError

    out = _output(ctx, output)
    configs = [load_config(f) for f in files or []]
    provider = connect(token)
    builds = _builds(provider)

    async def run() -> tuple[list[Image], list[Image]]:
        unused, busy = await builds.unreferenced(configs)
        for image in busy:
            why = "being created" if image.status == "creating" else "a server runs it"
            out.info(f"keeping snapshot {image.id} ({image.description}): {why}")
        if unused and not yes:
            out.info(_table(unused))
            if not sys.stdin.isatty():
                raise UsageError(
                    f"{len(unused)} snapshot(s) would be deleted; refusing without --yes",
                    hint="re-run with --yes, or from a terminal to be asked",
                )
            typer.confirm(f"Delete these {len(unused)} snapshot(s)?", abort=True, err=True)
        # Build servers and keys a killed build left behind go too (as image build does).
        await builds.sweep_leftovers()
        await builds.delete(unused)
        return unused, busy

    try:
        unused, busy = asyncio.run(run())
    finally:
        provider.close()
    text = f"deleted {len(unused)} snapshot(s)" if unused else "nothing to prune"
    out.result({"deleted": [_row(i) for i in unused], "kept_in_use": [_row(i) for i in busy]}, text)


def register(app: typer.Typer) -> None:
    app.add_typer(group)
