"""``hk8s kubeconfig``: write an admin kubeconfig for the cluster (0600).

Made from the cluster as it is (the endpoint is the API load balancer, or the first control
plane) and the secrets bundle's Kubernetes CA, so it works even when the file ``create`` wrote
is gone. The server URL is the cluster endpoint, as in the one ``create`` writes.
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
    from hk8s.controller import ClusterAccess

__all__ = ["access", "register"]

OutputPath = Annotated[
    Path | None,
    typer.Option("--path", dir_okay=False, help="Where to write it [default: beside the config]."),
]


def access(
    file: Path, token: str | None, secrets: Path | None
) -> tuple[ClusterConfig, ClusterAccess]:
    """The config and how to reach its cluster (one list call or two, no writes)."""
    import asyncio

    from hk8s.cli.infra import connect
    from hk8s.config import load_config
    from hk8s.controller import observe_access

    config = load_config(file)
    provider = connect(token)
    try:
        found = asyncio.run(observe_access(provider, config, beside(file, secrets, "secrets.yaml")))
    finally:
        provider.close()
    return config, found


def kubeconfig(
    ctx: typer.Context,
    file: ConfigFile = Path("cluster.yaml"),
    token: Token = None,
    secrets: SecretsPath = None,
    output: OutputOption = None,
    path: OutputPath = None,
) -> None:
    """Write an admin kubeconfig for the cluster (mode 0600)."""
    from hk8s.cli._env import check_writable
    from hk8s.pki import write_kubeconfig

    out = Output.of(ctx, output)
    check_writable(beside(file, path, "kubeconfig"), "--path")
    config, found = access(file, token, secrets)
    target = write_kubeconfig(beside(file, path, "kubeconfig"), found.kubeconfig())
    out.result(
        {"cluster": config.name, "kubeconfig": str(target), "server": found.endpoint.url},
        f"wrote {target} (server {found.endpoint.url})",
    )


def register(app: typer.Typer) -> None:
    app.command("kubeconfig")(kubeconfig)
