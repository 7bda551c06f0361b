"""``hk8s infra``: create or converge a cluster's network, firewall, placement groups and API
load balancer. Re-running changes only what differs from cluster.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output, OutputMode

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig
    from hk8s.controller import Component, Purpose
    from hk8s.providers.hcloud import HcloudProvider

__all__ = ["check_against_api", "connect", "infra_components", "register"]


def connect(token: str | None) -> HcloudProvider:
    """The Hetzner provider for ``token`` (HCLOUD_ENDPOINT, HK8S_TIME_SCALE honoured).

    Every command that talks to Hetzner comes through here first, so the token and every
    environment variable are checked before the first request (``_env``).
    """
    from hk8s.cli._env import check_environment, check_token
    from hk8s.providers.hcloud import HcloudProvider

    cleaned = check_token(token)
    check_environment()
    return HcloudProvider(cleaned)


async def check_against_api(
    config: ClusterConfig,
    provider: HcloudProvider,
    out: Output,
    file: Path,
    purpose: Purpose = "servers",
) -> list[str]:
    """The catalogue check before any change (``check_catalogue``); prints its warnings.

    Raises ``ConfigError`` (exit 2) for a type or location Hetzner does not sell there now.
    """
    from hk8s.controller import check_catalogue

    report = await check_catalogue(config, provider, purpose=purpose, source=str(file))
    for warning in report.warnings:
        out.warn(warning)
    return report.warnings


async def infra_components(config: ClusterConfig, provider: HcloudProvider) -> list[Component]:
    """The components ``infra`` reconciles; ``create`` adds its own after these."""
    from hk8s.controller import InfraComponent, infra_intent, needs_public_ip
    from hk8s.providers.hcloud import fetch_public_ip

    my_ip = await fetch_public_ip() if needs_public_ip(config) else None
    return [InfraComponent(provider, infra_intent(config, my_ip))]


def infra(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    output: Annotated[
        OutputMode | None,
        typer.Option("--output", "-o", help="Same as the global --output, after the command."),
    ] = None,
) -> None:
    """Create or update the network, firewall, placement groups and API load balancer."""
    import asyncio

    from hk8s.cli._progress import progress
    from hk8s.config import load_config
    from hk8s.controller import InfraComponent, Reconciler

    out = Output.of(ctx, output)
    config = load_config(file)
    provider = connect(token)

    async def run() -> None:
        await check_against_api(config, provider, out, file)
        components = await infra_components(config, provider)
        with progress(out) as reporter:
            reconciler = Reconciler(components, reporter)
            for warning in reconciler.warnings():
                out.warn(warning)
            plan = await reconciler.plan()
            if not plan.empty:
                counts = plan.counts()
                out.info(
                    f"{config.name}: {counts['create']} to create, {counts['update']} to "
                    f"update, {counts['delete']} to delete"
                )
            results = await reconciler.apply(plan, phase="infra")
        [component] = [c for c in components if isinstance(c, InfraComponent)]
        summary = component.summary(results)
        summary["changes"] = plan.counts()
        out.result(summary, _text(summary, plan.empty))

    try:
        asyncio.run(run())
    finally:
        provider.close()


def _text(summary: dict[str, object], unchanged: bool) -> str:
    net = summary["network"]
    fw = summary["firewall"]
    lb = summary["load_balancer"]
    assert isinstance(net, dict) and isinstance(fw, dict)
    groups = summary["placement_groups"]
    assert isinstance(groups, list)
    state = "already up to date" if unchanged else "ready"
    lines = [
        f"infra of cluster {summary['cluster']} is {state}",
        f"  network          {net['name']} {net['ip_range']} (subnet {', '.join(net['subnets'])})",
        f"  firewall         {fw['name']} (6443 from {', '.join(fw['kube_api_sources'])}; "
        f"50000 from {', '.join(fw['talos_api_sources'])})",
        f"  placement groups {', '.join(groups) or 'none'}",
    ]
    if isinstance(lb, dict):
        lines.append(f"  load balancer    {lb['name']} ({lb['type']}) at {lb['public_ipv4']}:6443")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("infra")(infra)
