"""``hk8s doctor``: read-only checks before an upgrade or when something is off.

Versions against the supported matrix (cluster.yaml's and the charts Helm has deployed), nodes
whose versions differ, certificate expiry (secrets.yaml's CAs, the talosconfig's and
kubeconfig's client certs), etcd health and alarms, firewall sources that no longer admit this
machine, and Hetzner resources with the cluster's label that cluster.yaml does not account for.
Exit 0 when healthy, 1 with each problem and its fix; ``-o json`` for tools. Nothing is changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output
from hk8s.cli.create import OutputOption, SecretsPath, beside

if TYPE_CHECKING:
    from hk8s.controller import DoctorReport

__all__ = ["register", "render_report"]


def render_report(report: DoctorReport) -> str:
    lines = []
    for name, problems in report.by_check().items():
        if not problems:
            lines.append(f"{typer.style('ok  ', fg='green')} {name}")
        for problem in problems:
            lines.append(
                f"{typer.style('FAIL', fg='red')} {name}: {problem.subject}: {problem.problem}"
            )
            lines.append(f"     fix: {problem.fix}")
    count = len(report.problems)
    lines.append("no problems found" if not count else f"{count} problem(s) found")
    return "\n".join(lines)


def doctor(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
) -> None:
    """Read-only checks: versions, certificates, etcd, firewall, orphans; exit 1 on problems."""
    import asyncio
    import datetime as dt

    from hk8s.cli._main import EXIT_FAILED, EXIT_OK
    from hk8s.cli.create import kube_client, talos_nodes
    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.controller import DoctorFiles, diagnose, observe_access
    from hk8s.errors import UnavailableError
    from hk8s.providers.hcloud import fetch_public_ip

    out = Output.of(ctx, output)
    config = load_config(file)
    provider = connect(token)
    secrets_path = beside(file, secrets, "secrets.yaml")
    files = DoctorFiles(
        talosconfig=beside(file, None, "talosconfig"),
        kubeconfig=beside(file, None, "kubeconfig"),
        secrets=secrets_path,
    )

    async def run() -> DoctorReport:
        try:
            my_ip: str | None = await fetch_public_ip()
        except UnavailableError as exc:
            out.warn(f"{exc.message}: the firewall check cannot tell whether it admits you")
            my_ip = None
        found = await observe_access(provider, config, secrets_path)
        talos = talos_nodes(provider, found.talosconfig(), once=True)
        kube = kube_client(provider, found.kubeconfig(), once=True)
        try:
            return await diagnose(
                provider, talos, kube, found, files, my_ip=my_ip, now=dt.datetime.now(dt.UTC)
            )
        finally:
            await talos.aclose()
            await kube.close()

    try:
        report = asyncio.run(run())
    finally:
        provider.close()
    out.result(report.to_dict(), render_report(report))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
