"""``hk8s create``: converge the whole cluster (infra, servers, Talos, etcd, addons, health).

Re-running is always safe: it changes only what differs from cluster.yaml, scales pools up
and down, and finishes whatever an interrupted run left. Files, all mode 0600, default to the
config's directory: ``secrets.yaml`` (the cluster's PKI; made by the first run, keep it),
``kubeconfig`` and ``talosconfig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Typer reads the annotations at runtime, so the option types must be real imports.
from hk8s.cli._options import ConfigFile, Token  # noqa: TC001
from hk8s.cli._output import Output, OutputMode

if TYPE_CHECKING:
    from collections.abc import Mapping

    from hk8s.config import ClusterConfig
    from hk8s.controller import CreateOptions, CreateResult, Reporter
    from hk8s.pki import SecretsBundle, Talosconfig
    from hk8s.providers.hcloud import HcloudProvider
    from hk8s.providers.k8s import KubeClient, KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI, TalosNodes

__all__ = [
    "OutputOption",
    "SecretsPath",
    "beside",
    "converge",
    "kube_client",
    "kube_factory",
    "register",
    "talos_factory",
    "talos_nodes",
]

SecretsPath = Annotated[
    Path | None,
    typer.Option(
        "--secrets",
        dir_okay=False,
        help="The cluster's secrets bundle [default: secrets.yaml beside the config].",
    ),
]


OutputOption = Annotated[
    OutputMode | None,
    typer.Option("--output", "-o", help="Same as the global --output, after the command."),
]


def beside(config_file: Path, given: Path | None, name: str) -> Path:
    """``given``, or ``name`` in the config file's directory."""
    return given if given is not None else config_file.resolve().parent / name


def talos_nodes(
    provider: HcloudProvider, talosconfig: Talosconfig, *, once: bool = False
) -> TalosNodes:
    """A Talos client for ``talosconfig``'s identity on the provider's clock and timing;
    ``once``: no retries, for probes and read-only commands (a node that is down says so)."""
    import dataclasses

    from hk8s.providers.talos import TalosCredentials, TalosNodes

    timing = dataclasses.replace(provider.timing, retry_attempts=1) if once else provider.timing
    credentials = TalosCredentials.from_talosconfig(talosconfig)
    return TalosNodes(credentials, timing=timing, clock=provider.clock)


def kube_client(
    provider: HcloudProvider, kubeconfig: Mapping[str, Any] | str, *, once: bool = False
) -> KubeClient:
    """A Kubernetes client for ``kubeconfig`` (a dict, or its YAML text) on the provider's
    clock and timing; ``once`` as for ``talos_nodes``."""
    import dataclasses

    import yaml

    from hk8s.providers.k8s import KubeClient

    timing = dataclasses.replace(provider.timing, retry_attempts=1) if once else provider.timing
    config = yaml.safe_load(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
    return KubeClient.from_kubeconfig(config, clock=provider.clock, timing=timing)


class TalosFactory:
    """Talos clients for a bundle: one for calls, one that tries once (probes)."""

    def __init__(self, provider: HcloudProvider) -> None:
        self._provider = provider
        self.opened: list[TalosNodes] = []

    def __call__(self, bundle: SecretsBundle) -> tuple[TalosNodeAPI, TalosNodeAPI]:
        from hk8s.pki import generate_talosconfig

        identity = generate_talosconfig("hk8s", bundle.os_ca, endpoints=[])
        talos = talos_nodes(self._provider, identity)
        probe = talos_nodes(self._provider, identity, once=True)
        self.opened += [talos, probe]
        return talos, probe

    async def aclose(self) -> None:
        for nodes in self.opened:
            await nodes.aclose()


def talos_factory(provider: HcloudProvider) -> TalosFactory:
    return TalosFactory(provider)


def kube_factory(provider: HcloudProvider) -> Any:
    """``kubeconfig dict -> KubeClient`` on the provider's clock and timing."""

    def make(kubeconfig: Mapping[str, Any]) -> KubernetesAPI:
        return kube_client(provider, kubeconfig)

    return make


def create(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    kubeconfig_path: Annotated[
        Path | None,
        typer.Option(help="Where to write the kubeconfig [default: beside the config]."),
    ] = None,
    talosconfig_path: Annotated[
        Path | None,
        typer.Option(help="Where to write the talosconfig [default: beside the config]."),
    ] = None,
    build_images: Annotated[
        bool,
        typer.Option(
            "--build-images/--no-build-images",
            help="Build missing Talos snapshots (default) or fail when one is missing.",
        ),
    ] = True,
    output: OutputOption = None,
) -> None:
    """Create or converge the cluster: infra, servers, Talos, etcd, addons, health."""
    import asyncio

    from hk8s.cli._env import check_token, check_writable
    from hk8s.cli._progress import progress
    from hk8s.cli.infra import check_against_api, connect
    from hk8s.config import load_config
    from hk8s.controller import CreateOptions
    from hk8s.machineconfig import check_machine_configs

    out = Output.of(ctx, output)
    config = load_config(file)
    check_machine_configs(config)
    token = check_token(token)
    from hk8s.cli._backups import create_backup_credentials

    options = CreateOptions(
        secrets_path=beside(file, secrets, "secrets.yaml"),
        kubeconfig_path=beside(file, kubeconfig_path, "kubeconfig"),
        talosconfig_path=beside(file, talosconfig_path, "talosconfig"),
        token=token,
        build_images=build_images,
        backup_credentials=create_backup_credentials(config),
    )
    # Checked before any change: a bad path used to fail after the whole cluster was built.
    check_writable(options.secrets_path, "--secrets")
    check_writable(options.kubeconfig_path, "--kubeconfig-path")
    check_writable(options.talosconfig_path, "--talosconfig-path")
    provider = connect(token)

    async def run() -> CreateResult:
        await check_against_api(config, provider, out, file)
        with progress(out) as reporter:
            return await converge(config, provider, options, reporter)

    try:
        result = asyncio.run(run())
    finally:
        provider.close()
    out.result(result.to_dict(), _text(result))


async def converge(
    config: ClusterConfig, provider: HcloudProvider, options: CreateOptions, reporter: Reporter
) -> CreateResult:
    """``create_cluster`` with the real clients (tests call it with their own reporter)."""
    from hk8s.cli.image import _builds
    from hk8s.cli.infra import infra_components
    from hk8s.controller import CreatePorts, create_cluster

    talos = talos_factory(provider)
    try:
        ports = CreatePorts(
            hcloud=provider,
            talos=talos,
            kube=kube_factory(provider),
            clock=provider.clock,
            timing=provider.timing,
            infra=await infra_components(config, provider),
            builds=_builds(provider, reporter),
        )
        return await create_cluster(config, ports, options, reporter)
    finally:
        await talos.aclose()


def _text(result: CreateResult) -> str:
    counts = result.plan.counts()
    changed = "up to date" if result.plan.empty and not result.configured else "ready"
    lines = [
        f"cluster {result.cluster} is {changed} and healthy ({len(result.nodes)} nodes)",
        f"  changes      {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} deleted; {len(result.configured)} machine config(s) applied",
        f"  endpoint     {result.endpoint}",
        f"  secrets      {result.secrets_path}"
        + (" (new: back it up, it is the cluster's identity)" if result.secrets_generated else ""),
        f"  kubeconfig   {result.kubeconfig_path}",
        f"  talosconfig  {result.talosconfig_path}",
    ]
    if result.removed:
        lines.append(f"  removed      {', '.join(result.removed)}")
    lines.append(f"try: KUBECONFIG={result.kubeconfig_path} kubectl get nodes")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("create")(create)
