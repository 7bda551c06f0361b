"""``hk8s etcd snapshot|restore``: save the cluster's etcd to a local file, and recover from one.

The snapshot comes from a healthy control plane through the Talos API (``EtcdSnapshot``), is
verified (etcd's SHA-256 trailer, the bbolt structure) and only then appears at its path, mode
0600: it holds every Secret of the cluster. The destination flag is ``--to`` (mirroring a
restore's ``--from``): ``-o`` is already the output format and ``-f``/``--file`` the config.

``restore`` follows Talos' disaster-recovery guide (``hk8s.controller.restore_etcd``): it is
refused while etcd has quorum unless ``--force``, and asks for the cluster name to be typed
(``--yes`` for CI), like ``destroy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output
from hk8s.cli.create import OutputOption, SecretsPath, beside

if TYPE_CHECKING:
    from hk8s.controller import RestoreResult, SnapshotResult

__all__ = ["register", "render_snapshot", "snapshot_path"]

group = typer.Typer(
    name="etcd",
    help="Save (snapshot) and restore the cluster's etcd through the Talos API.",
    no_args_is_help=True,
)


def snapshot_path(config_file: Path, to: Path | None, cluster: str, stamp: str) -> Path:
    """``to`` as given; a directory or nothing gets ``<cluster>-etcd-<UTC time>.db`` in it."""
    name = f"{cluster}-etcd-{stamp}.db"
    if to is None:
        return config_file.resolve().parent / name
    return to / name if to.is_dir() else to


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render_snapshot(result: SnapshotResult) -> str:
    return "\n".join(
        [
            f"etcd snapshot from {result.node} written to {result.path} (mode 0600)",
            f"  size      {_size(result.size)} ({result.size} bytes)",
            f"  revision  {result.revision}",
            f"  keys      {result.total_keys}",
            f"  sha256    {result.sha256}",
        ]
    )


@group.command("snapshot")
def snapshot(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="File (or directory) to write the snapshot to "
            "[default: <cluster>-etcd-<UTC time>.db beside the config].",
        ),
    ] = None,
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
) -> None:
    """Save a consistent etcd snapshot from a healthy control plane (mode 0600)."""
    import asyncio
    import datetime as dt

    from hk8s.cli.create import talos_nodes
    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.controller import observe_access, take_snapshot
    from hk8s.errors import UsageError

    out = Output.of(ctx, output)
    config = load_config(file)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    dest = snapshot_path(file, to, config.name, stamp)
    if not dest.parent.is_dir():
        raise UsageError(
            f"cannot write the snapshot to {dest}: {dest.parent} is not a directory",
            hint="create the directory first, or pass another --to",
        )
    provider = connect(token)

    async def run() -> SnapshotResult:
        found = await observe_access(provider, config, beside(file, secrets, "secrets.yaml"))
        talos = talos_nodes(provider, found.talosconfig())
        try:
            out.info(f"taking an etcd snapshot of {config.name} ...")
            return await take_snapshot(talos, found.control_planes, dest)
        finally:
            await talos.aclose()

    try:
        result = asyncio.run(run())
    finally:
        provider.close()
    out.result({"cluster": config.name, **result.to_dict()}, render_snapshot(result))


@group.command("restore")
def restore(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    source: Annotated[
        Path,
        typer.Option(
            "--from", help="The snapshot file (from `hk8s etcd snapshot`).", dir_okay=False
        ),
    ] = Path("etcd.db"),
    force: Annotated[
        bool, typer.Option("--force", help="Restore even though etcd still has quorum.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for the cluster name.")
    ] = False,
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
) -> None:
    """Disaster recovery: rebuild etcd on every control plane from a snapshot."""
    import asyncio
    import sys

    from hk8s.cli._progress import progress
    from hk8s.cli.create import kube_client, talos_nodes
    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.controller import Waiter, observe_access, restore_etcd, verify_snapshot
    from hk8s.errors import UsageError

    out = Output.of(ctx, output)
    config = load_config(file)
    verify_snapshot(source)  # a bad file is refused before anything else
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "restore asks for the cluster name to be typed, but stdin is not a terminal",
                hint=f"pass --yes to restore cluster {config.name} without asking (CI)",
            )
        typed = typer.prompt(
            f"Type the cluster name ({config.name}) to roll its etcd back to {source}",
            default="",
            err=True,
        )
        if typed.strip() != config.name:
            typer.echo("the name does not match; nothing was changed", err=True)
            raise typer.Abort()
    provider = connect(token)

    async def run() -> RestoreResult:
        found = await observe_access(provider, config, beside(file, secrets, "secrets.yaml"))
        talos = talos_nodes(provider, found.talosconfig())
        probe = talos_nodes(provider, found.talosconfig(), once=True)
        kube = kube_client(provider, found.kubeconfig())
        try:
            with progress(out) as reporter:
                waiter = Waiter(provider.clock, provider.timing, reporter)
                return await restore_etcd(
                    talos, probe, kube, waiter, found.nodes, source, force=force
                )
        finally:
            await talos.aclose()
            await probe.aclose()
            await kube.close()

    try:
        result = asyncio.run(run())
    finally:
        provider.close()
    out.result(
        {"cluster": config.name, **result.to_dict()},
        f"etcd of {config.name} restored from {source} (revision {result.revision}) on "
        f"{result.node}; members: {', '.join(result.members)}; the cluster is healthy",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(group)
