"""``hk8s upgrade``: roll the cluster to the Talos and Kubernetes versions in cluster.yaml.

Edit ``talos.version`` and/or ``kubernetes.version``, then run it. Control planes go one at a
time, then workers (``--parallel N`` of them at once), each gated on the cluster's health;
re-running skips nodes already done. ``--dry-run`` prints the per-node plan and changes
nothing (exit 3 when steps are pending, as ``hk8s plan``). Exit 0 when done, 1 when a node
failed (the error names it), 2 for a refused version path (nothing was touched).
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
    from hk8s.controller import Reporter, UpgradePlan, UpgradeResult

__all__ = ["register", "render_plan"]


def render_plan(plan: UpgradePlan) -> str:
    """One line per node and phase: ``talos  demo-cp-1  control-plane  v1.12.0 -> v1.13.0``."""
    if not plan.steps:
        return "no nodes"
    width = max(len(s.node) for s in plan.steps)
    lines = []
    for step in plan.steps:
        arrow = f"{step.current} -> {step.target}" if step.pending else step.current
        lines.append(
            f"  {step.phase:<10} {step.node.ljust(width)}  {step.role:<13}  "
            f"{arrow:<22} {step.action}"
        )
    return "\n".join(lines)


def _text(result: UpgradeResult) -> str:
    plan = result.plan
    target = f"Talos {plan.talos}, Kubernetes {plan.kubernetes}"
    if result.dry_run:
        head = (
            f"cluster {plan.cluster}: {len(plan.pending())} step(s) to reach {target} "
            "(dry run, nothing changed)"
            if not plan.empty
            else f"cluster {plan.cluster} already runs {target}"
        )
        return f"{head}\n{render_plan(plan)}"
    if plan.empty:
        return f"cluster {plan.cluster} already runs {target}: nothing to do"
    lines = [f"cluster {plan.cluster} runs {target} and is healthy"]
    if result.talos_upgraded:
        lines.append(f"  talos upgraded       {', '.join(result.talos_upgraded)}")
    if result.kubernetes_upgraded:
        lines.append(f"  kubernetes upgraded  {', '.join(result.kubernetes_upgraded)}")
    return "\n".join(lines)


def _confirm(plan: UpgradePlan) -> bool:
    typer.echo(render_plan(plan), err=True)
    return typer.confirm(
        f"upgrade {len(plan.pending())} node step(s) of cluster {plan.cluster}?", err=True
    )


def upgrade(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    talos_only: Annotated[
        bool, typer.Option("--talos-only", help="Upgrade Talos only, keep Kubernetes.")
    ] = False,
    kubernetes_only: Annotated[
        bool, typer.Option("--kubernetes-only", help="Upgrade Kubernetes only, keep Talos.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before starting.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the per-node plan; change nothing.")
    ] = False,
    allow_downgrade: Annotated[
        bool, typer.Option("--allow-downgrade", help="Allow moving to an older version.")
    ] = False,
    parallel: Annotated[
        int,
        typer.Option(
            "--parallel", min=1, help="Workers upgraded at the same time (control planes: 1)."
        ),
    ] = 1,
    build_images: Annotated[
        bool,
        typer.Option(
            "--build-images/--no-build-images",
            help="Build the new release's snapshot when missing (default) or fail.",
        ),
    ] = True,
    output: OutputOption = None,
) -> None:
    """Rolling Talos and/or Kubernetes upgrade to the versions in cluster.yaml."""
    import asyncio
    import dataclasses

    from hk8s.cli._progress import progress
    from hk8s.cli.image import _builds
    from hk8s.cli.infra import check_against_api, connect
    from hk8s.config import load_config
    from hk8s.controller import UpgradeOptions, UpgradePorts, upgrade_cluster
    from hk8s.errors import UsageError

    out = Output.of(ctx, output)
    if talos_only and kubernetes_only:
        raise UsageError(
            "--talos-only and --kubernetes-only exclude each other",
            hint="pass neither to upgrade both (Talos first)",
        )
    config = load_config(file)
    options = UpgradeOptions(
        secrets_path=beside(file, secrets, "secrets.yaml"),
        talos=not kubernetes_only,
        kubernetes=not talos_only,
        dry_run=dry_run,
        allow_downgrade=allow_downgrade,
        parallel=parallel,
        build_images=build_images,
    )
    provider = connect(token)
    talos = talos_factory(provider)

    def ports(reporter: Reporter | None) -> UpgradePorts:
        return UpgradePorts(
            hcloud=provider,
            talos=talos,
            kube=kube_factory(provider),
            clock=provider.clock,
            timing=provider.timing,
            builds=_builds(provider, reporter),
        )

    async def run() -> UpgradeResult:
        try:
            await check_against_api(config, provider, out, file, purpose="upgrade")
            if not (yes or dry_run):
                # Ask before the live progress view owns the terminal.
                ask = dataclasses.replace(options, dry_run=True)
                planned = await upgrade_cluster(config, ports(None), ask)
                if planned.plan.empty:
                    return dataclasses.replace(planned, dry_run=False)
                if not sys.stdin.isatty():
                    raise UsageError(
                        "refusing to upgrade without confirmation on a non-interactive input",
                        hint="pass --yes (CI), or --dry-run to see the plan",
                    )
                if not await asyncio.to_thread(_confirm, planned.plan):
                    raise typer.Abort()
            with progress(out) as reporter:
                return await upgrade_cluster(config, ports(reporter), options, reporter)
        finally:
            await talos.aclose()

    try:
        result = asyncio.run(run())
    finally:
        provider.close()
    out.result(result.to_dict(), _text(result))
    if result.dry_run and not result.plan.empty:
        from hk8s.cli._main import EXIT_PLAN_HAS_CHANGES

        raise typer.Exit(EXIT_PLAN_HAS_CHANGES)


def register(app: typer.Typer) -> None:
    app.command("upgrade")(upgrade)
