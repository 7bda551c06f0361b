"""``hk8s destroy``: delete everything a cluster owns on Hetzner Cloud, nothing else.

Shows what will go, asks for the cluster name to be typed (``--yes`` skips that in CI), lets
the cluster remove its CCM load balancers and CSI volumes first when its API answers, then
deletes by label in dependency order. ``hk8s plan --destroy`` prints the same plan.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hk8s.cli._options import Token  # noqa: TC001 (Typer reads annotations at runtime)
from hk8s.cli._output import Output, OutputMode

if TYPE_CHECKING:
    from hk8s.controller import Destroyer, DestroyPlan, DestroyReport
    from hk8s.providers.hcloud import HcloudProvider
    from hk8s.providers.k8s import KubeClient

__all__ = [
    "DestroyTarget",
    "open_kube",
    "preview_destroy",
    "register",
    "render_destroy_plan",
    "resolve_target",
]


@dataclass(frozen=True)
class DestroyTarget:
    """Which cluster: from ``-f cluster.yaml`` (with its directory) or ``--name`` alone."""

    cluster: str
    config_dir: Path | None
    protection: bool


def resolve_target(file: Path | None, name: str | None) -> DestroyTarget:
    from hk8s.config import load_config
    from hk8s.errors import UsageError

    if name is not None:
        _check_name(name)
    if file is None and name is not None:
        return DestroyTarget(name, None, protection=False)
    config = load_config(file or Path("cluster.yaml"))
    if name is not None and name != config.name:
        raise UsageError(
            f"--name {name} does not match the config's cluster name {config.name}",
            hint="give either -f cluster.yaml or --name NAME",
        )
    return DestroyTarget(
        config.name, (file or Path("cluster.yaml")).resolve().parent, config.protection
    )


def _check_name(name: str) -> None:
    """``--name`` goes into a label selector: ``a,managed-by`` would select another cluster's
    resources and ``''`` none at all. Only a valid cluster name is accepted."""
    from hk8s.config import cluster_name_problem
    from hk8s.errors import UsageError

    problem = cluster_name_problem(name)
    if problem is not None:
        message, hint = problem
        raise UsageError(f"--name: {message}", hint=hint)


def open_kube(
    target: DestroyTarget, kubeconfig: Path | None, provider: HcloudProvider, out: Output
) -> KubeClient | None:
    """A client for the cluster's API when a kubeconfig for *this* cluster is at hand."""
    import yaml

    from hk8s.controller import kubeconfig_cluster
    from hk8s.errors import Hk8sError

    path = kubeconfig
    if path is None and target.config_dir is not None:
        path = target.config_dir / "kubeconfig"
    if path is None or not path.exists():
        return None
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        out.warn(f"cannot read {path}: {exc}; skipping the in-cluster cleanup")
        return None
    found = kubeconfig_cluster(document) if isinstance(document, dict) else None
    if found != target.cluster:
        out.warn(
            f"{path} is for cluster {found!r}, not {target.cluster!r}; "
            "skipping the in-cluster cleanup"
        )
        return None
    from hk8s.providers.k8s import KubeClient

    try:
        return KubeClient.from_kubeconfig(path, clock=provider.clock, timing=provider.timing)
    except Hk8sError as exc:
        out.warn(f"{exc}; skipping the in-cluster cleanup")
        return None


def new_destroyer(
    provider: HcloudProvider, target: DestroyTarget, kube: KubeClient | None, *, images: bool
) -> Destroyer:
    """The controller ``destroy`` and ``plan --destroy`` both run: one plan, one preview."""
    from hk8s.controller import Destroyer

    return Destroyer(
        provider,
        target.cluster,
        clock=provider.clock,
        timing=provider.timing,
        images=images,
        kube=kube,
    )


def _names(names: list[str]) -> list[str]:
    return textwrap.wrap(
        ", ".join(names), width=88, initial_indent="      ", subsequent_indent="      "
    )


def render_destroy_plan(plan: DestroyPlan, *, verbose: bool = False) -> str:
    """What destroy deletes, grouped by kind in deletion order, with counts."""
    from hk8s.controller import DESTROY_ORDER

    lines: list[str] = []
    inside = plan.in_cluster
    if inside is not None and not inside.empty:
        lines.append(typer.style("in the cluster, first:", bold=True))
        if inside.services:
            lines.append(f"  - {len(inside.services)} Service(s) of type LoadBalancer")
            lines.extend(_names([f"{s.namespace}/{s.name}" for s in inside.services]))
        if inside.claims:
            lines.append(f"  - {len(inside.claims)} PersistentVolumeClaim(s)")
            lines.extend(_names([f"{c.namespace}/{c.name}" for c in inside.claims]))
    groups = dict(plan.plan.by_kind())
    for kind in sorted(groups, key=lambda k: DESTROY_ORDER.index(k)):
        ops = groups[kind]
        lines.append(typer.style(f"{kind} ({len(ops)}):", bold=True))
        if verbose:
            lines.extend(typer.style(f"  - {op.name}", fg="red") + f"  ({op.reason})" for op in ops)
        else:
            lines.extend(typer.style(n, fg="red") for n in _names([op.name for op in ops]))
    for kept in plan.observed.kept_images:
        lines.append(f"kept: snapshot {kept.image.description or kept.image.id}: {kept.reason}")
    total = len(plan.plan)
    lines.append(f"cluster {plan.cluster}: {total} resource(s) to delete")
    return "\n".join(lines)


def _confirm(cluster: str) -> None:
    typed = typer.prompt(
        f"Type the cluster name ({cluster}) to delete it",
        default="",
        show_default=False,
        err=True,
    )
    if typed.strip() != cluster:
        typer.echo("the name does not match; nothing was deleted", err=True)
        raise typer.Abort()


def destroy(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Option("-f", "--file", dir_okay=False, help="The cluster config (cluster.yaml)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Destroy the cluster of this name; no config needed (CI)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for the cluster name (CI).")
    ] = False,
    images: Annotated[
        bool,
        typer.Option("--images", help="Also delete Talos snapshots no other cluster uses."),
    ] = False,
    purge_local: Annotated[
        bool,
        typer.Option(
            "--purge-local", help="Also remove secrets.yaml, kubeconfig, talosconfig locally."
        ),
    ] = False,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            dir_okay=False,
            help="The cluster's kubeconfig, to delete LoadBalancer Services and PVCs first "
            "[default: kubeconfig beside the config].",
        ),
    ] = None,
    token: Token = None,
    output: Annotated[
        OutputMode | None,
        typer.Option("--output", "-o", help="Same as the global --output, after the command."),
    ] = None,
) -> None:
    """Delete everything the cluster owns on Hetzner Cloud, in dependency order.

    Asks for the cluster name to be typed (--yes skips that). Deletes what is labelled
    cluster=NAME,managed-by=hk8s and the load balancers and volumes the cluster's Hetzner CCM
    and CSI driver made; nothing else. Talos snapshots and the local secrets.yaml, kubeconfig
    and talosconfig are kept unless asked for.
    """
    import asyncio

    from hk8s.cli._progress import progress
    from hk8s.cli.infra import connect
    from hk8s.controller import local_files, purge_local_files
    from hk8s.errors import ProtectionError, UsageError

    out = Output.of(ctx, output)
    target = resolve_target(file, name)
    if target.protection:
        raise ProtectionError(
            f"cluster {target.cluster} is protected (protection: true in its config)",
            hint="set protection: false in cluster.yaml, run hk8s create to lift the Hetzner "
            "delete protection, then run hk8s destroy again",
        )
    if purge_local and target.config_dir is None:
        raise UsageError(
            "--purge-local needs the config (-f cluster.yaml)",
            hint="the local files live beside the config",
        )
    if not yes and not sys.stdin.isatty():
        raise UsageError(
            "destroy asks for the cluster name to be typed, but stdin is not a terminal",
            hint=f"pass --yes to destroy cluster {target.cluster} without asking (CI)",
        )
    provider = connect(token)

    async def run() -> tuple[DestroyPlan, DestroyReport | None]:
        kube = open_kube(target, kubeconfig, provider, out)
        try:
            destroyer = new_destroyer(provider, target, kube, images=images)
            plan = await destroyer.plan()
            for note in plan.notes:
                out.warn(note)
            if plan.empty:
                return plan, None
            if not out.json or not yes:
                typer.echo(render_destroy_plan(plan, verbose=bool(out.verbose)), err=True)
            if not yes:
                destroyer.check(plan)
                await asyncio.to_thread(_confirm, target.cluster)
            with progress(out) as reporter:
                destroyer.reporter = reporter
                return plan, await destroyer.run(plan)
        finally:
            if kube is not None:
                await kube.close()

    try:
        plan, report = asyncio.run(run())
    finally:
        provider.close()
    kept = local_files(target.config_dir) if target.config_dir is not None else []
    purged = purge_local_files(kept) if purge_local else []
    out.result(
        _data(target.cluster, plan, report, purged, kept, images),
        _text(target.cluster, report, purged, kept, images),
    )


def _data(
    cluster: str,
    plan: DestroyPlan,
    report: DestroyReport | None,
    purged: list[Path],
    kept: list[Path],
    images: bool,
) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "deleted": report.deleted if report else [],
        "already_gone": report.gone if report else [],
        "in_cluster_left": report.in_cluster_left if report else [],
        "snapshots_kept": not images,
        "kept_snapshots": [k.image.id for k in plan.observed.kept_images],
        "local_files_removed": [str(p) for p in purged],
        "local_files_kept": [str(p) for p in kept if p not in purged],
    }


def _text(
    cluster: str, report: DestroyReport | None, purged: list[Path], kept: list[Path], images: bool
) -> str:
    if report is None:
        lines = [f"cluster {cluster}: nothing to destroy, no resources carry its labels"]
    else:
        lines = [
            f"cluster {cluster} destroyed: {len(report.deleted)} resource(s) deleted"
            + (f", {len(report.gone)} already gone" if report.gone else "")
        ]
        lines.extend(f"  left in the cluster: {left}" for left in report.in_cluster_left)
    if not images:
        lines.append("  Talos snapshots are kept (--images deletes those no other cluster uses)")
    lines.extend(f"  removed {path}" for path in purged)
    still = [str(p) for p in kept if p not in purged]
    if still:
        lines.append(f"  kept {', '.join(still)} (--purge-local removes them)")
    return "\n".join(lines)


def preview_destroy(out: Output, file: Path, token: str | None, *, images: bool) -> int:
    """``hk8s plan --destroy``: the plan destroy would carry out; the exit code (0 or 3)."""
    import asyncio

    from hk8s.cli._main import EXIT_OK, EXIT_PLAN_HAS_CHANGES
    from hk8s.cli.infra import connect

    target = resolve_target(file, None)
    provider = connect(token)

    async def run() -> DestroyPlan:
        kube = open_kube(target, None, provider, out)
        try:
            destroyer = new_destroyer(provider, target, kube, images=images)
            return await destroyer.plan()
        finally:
            if kube is not None:
                await kube.close()

    try:
        plan = asyncio.run(run())
    finally:
        provider.close()
    warnings = list(plan.notes)
    if target.protection:
        warnings.append("protection: true is set in the config: hk8s destroy would refuse")
    for warning in warnings:
        out.warn(warning)
    text = (
        render_destroy_plan(plan, verbose=True)
        if not plan.empty
        else (f"cluster {target.cluster}: nothing to destroy, no resources carry its labels")
    )
    inside = plan.in_cluster
    data = {
        "cluster": target.cluster,
        "destroy": True,
        **plan.plan.to_dict(),
        "changes_pending": not plan.empty,
        "in_cluster": {
            "services": [str(s) for s in inside.services] if inside else [],
            "claims": [str(c) for c in inside.claims] if inside else [],
        },
        "warnings": warnings,
    }
    out.result(data, text)
    return EXIT_OK if plan.empty else EXIT_PLAN_HAS_CHANGES


def register(app: typer.Typer) -> None:
    app.command("destroy")(destroy)
