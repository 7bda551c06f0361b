"""``hk8s etcd snapshot|restore``: save the cluster's etcd to a local file, and recover from one.

The snapshot comes from a healthy control plane through the Talos API (``EtcdSnapshot``), is
verified (etcd's SHA-256 trailer, the bbolt structure) and only then appears at its path, mode
0600: it holds every Secret of the cluster. The destination flag is ``--to`` (mirroring a
restore's ``--from``): ``-o`` is already the output format and ``-f``/``--file`` the config.

``restore`` follows Talos' disaster-recovery guide (``hk8s.controller.restore_etcd``): it is
refused while etcd has quorum unless ``--force``, and asks for the cluster name to be typed
(``--yes`` for CI), like ``destroy``. ``--from`` takes a file or ``s3://bucket/key``, a backup
the scheduled CronJob (cluster.yaml ``backup:``) stored: downloaded, decrypted with the age
identity (``--identity FILE`` or ``HK8S_AGE_IDENTITY``) and verified before anything changes.

``backups`` lists what the CronJob stored, newest first, and ``--prune`` deletes what
``backup.retention`` no longer keeps (``hk8s.controller.prunable``).
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
    from hk8s.config import ClusterConfig
    from hk8s.controller import RestoreResult, SnapshotResult
    from hk8s.providers.s3 import StoredObject

__all__ = ["register", "render_backups", "render_snapshot", "snapshot_path"]

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
        str,
        typer.Option(
            "--from",
            help="The snapshot file (from `hk8s etcd snapshot`), or s3://bucket/key of a "
            "scheduled backup (`hk8s etcd backups`).",
        ),
    ] = "etcd.db",
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity",
            help="age identity file that decrypts an s3:// backup [default: $HK8S_AGE_IDENTITY].",
            dir_okay=False,
        ),
    ] = None,
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
    import shutil
    import tempfile

    from hk8s.cli._backups import fetch_backup
    from hk8s.config import load_config

    out = Output.of(ctx, output)
    config = load_config(file)
    if not source.startswith("s3://"):
        _restore(out, config, file, source, Path(source), force, yes, token, secrets)
        return
    # The backup is decrypted into a private directory (0700) that goes in every outcome.
    workdir = Path(tempfile.mkdtemp(prefix="hk8s-restore-"))
    try:
        out.info(f"downloading {source} ...")
        snapshot_file = asyncio.run(fetch_backup(config, source, identity, workdir))
        _restore(out, config, file, source, snapshot_file, force, yes, token, secrets)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _restore(
    out: Output,
    config: ClusterConfig,
    file: Path,
    source: str,
    snapshot_file: Path,
    force: bool,
    yes: bool,
    token: str | None,
    secrets: Path | None,
) -> None:
    import asyncio
    import sys

    from hk8s.cli._progress import progress
    from hk8s.cli.create import kube_client, talos_nodes
    from hk8s.cli.infra import connect
    from hk8s.controller import Waiter, observe_access, restore_etcd, verify_snapshot
    from hk8s.errors import UsageError

    verify_snapshot(snapshot_file)  # a bad file is refused before anything else
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
                    talos, probe, kube, waiter, found.nodes, snapshot_file, force=force
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


def render_backups(objects: list[StoredObject], pruned: list[StoredObject]) -> str:
    if not objects:
        return "no backups stored yet"
    gone = {o.key for o in pruned}
    lines = [f"{'TIME (UTC)':<20}  {'SIZE':>10}  KEY"]
    for obj in objects:
        mark = "  (pruned)" if obj.key in gone else ""
        when = obj.last_modified.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{when:<20}  {_size(obj.size):>10}  {obj.key}{mark}")
    count = len(objects) - len(gone)
    lines.append(f"{count} backup(s)" + (f"; {len(gone)} pruned" if gone else ""))
    return "\n".join(lines)


@group.command("backups")
def backups(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Delete the backups backup.retention no longer keeps."),
    ] = False,
    output: OutputOption = None,
) -> None:
    """List the scheduled backups in object storage, newest first (S3 credentials from the
    environment); --prune applies backup.retention."""
    import asyncio
    import datetime as dt

    from hk8s.cli._backups import require_backup, s3_client
    from hk8s.config import load_config
    from hk8s.controller import prunable
    from hk8s.errors import UsageError
    from hk8s.providers.k8s import backup_prefix

    out = Output.of(ctx, output)
    config = load_config(file)
    backup = require_backup(config)
    if prune and backup.retention is None:
        raise UsageError(
            "--prune needs backup.retention in cluster.yaml; nothing was deleted",
            hint="e.g. retention: {keep: 48, max_age: 14d}",
        )
    client = s3_client(config, "hk8s etcd backups")
    prefix = backup_prefix(config) + "/"

    async def run() -> tuple[list[StoredObject], list[StoredObject]]:
        found = await client.list_objects(backup.bucket, prefix)
        found.sort(key=lambda o: (o.last_modified, o.key), reverse=True)
        doomed = prunable(found, backup.retention, now=dt.datetime.now(dt.UTC)) if prune else []
        for obj in doomed:
            out.info(f"deleting s3://{backup.bucket}/{obj.key}")
            await client.delete_object(backup.bucket, obj.key)
        return found, doomed

    found, pruned = asyncio.run(run())
    gone = {o.key for o in pruned}
    out.result(
        {
            "cluster": config.name,
            "bucket": backup.bucket,
            "prefix": prefix,
            "backups": [
                {
                    "key": o.key,
                    "url": f"s3://{backup.bucket}/{o.key}",
                    "size": o.size,
                    "time": o.last_modified.isoformat().replace("+00:00", "Z"),
                }
                for o in found
                if o.key not in gone
            ],
            "pruned": [o.key for o in pruned],
        },
        render_backups(found, pruned),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(group)
