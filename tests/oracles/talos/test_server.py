"""hk8s' Python Talos client against a Go server built from Talos' own API types and TLS.

``talos-oracle serve`` (server.go, v1.13 module) serves the MachineService with Talos'
generated types and TLS set up as apid does it (siderolabs/crypto ``tls.New``, mutual TLS
pinned to the bundle's Talos CA, a server certificate from crypto's x509 helpers, the client
certificate's EKU checked as apid checks it). hk8s, with the talosconfig it writes from the
same bundle: the Ed25519 handshake, unary and streaming calls, ``nodes`` aggregation with a
failed node's error decoded, Bootstrap's FailedPrecondition, roles, and a foreign CA.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest
import yaml

from hk8s.errors import AuthError, TransientAPIError, UnavailableError
from hk8s.model import Timing
from hk8s.pki import generate_secrets, generate_talosconfig, write_secrets
from hk8s.providers.talos import BootstrapOutcome, TalosClient, TalosCredentials

from .conftest import Oracle, _build  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from hk8s.pki import SecretsBundle

FAST = Timing(request_timeout=10.0, retry_initial=0.05, retry_max=0.1, retry_attempts=3)


@pytest.fixture(scope="module")
def server_oracle() -> Oracle:
    return Oracle("1.13", _build("1.13"))


@pytest.fixture
async def served(server_oracle: Oracle, tmp_path: Path) -> AsyncIterator[tuple[str, SecretsBundle]]:
    bundle = generate_secrets()
    path = write_secrets(tmp_path / "secrets.yaml", bundle)
    process = await asyncio.create_subprocess_exec(
        str(server_oracle.binary), "serve", "--secrets", str(path), "--listen", "127.0.0.1:0",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None and process.stdin is not None
    address = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    try:
        yield address, bundle
    finally:
        process.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()


def _client(
    address: str, bundle: SecretsBundle, roles: tuple[str, ...] = ("os:admin",)
) -> TalosClient:
    talosconfig = generate_talosconfig("demo", bundle.os_ca, endpoints=[address], roles=roles)
    return TalosClient.from_talosconfig(talosconfig, timing=FAST)


async def test_unary_streaming_nodes_and_errors(served: tuple[str, SecretsBundle]) -> None:
    address, bundle = served
    async with _client(address, bundle) as talos:
        [version] = await talos.version()
        info = version.unwrap()
        assert (info.tag, info.platform, info.rbac) == ("v1.13.9", "hcloud", True)
        [services] = await talos.service_list()
        assert {s.id for s in services.unwrap()} >= {"apid", "etcd", "trustd"}
        # apid's aggregation: one message per node; a failed node in metadata.error/status.
        results = await talos.with_nodes("10.0.1.2", "down").version()
        assert [r.node for r in results] == ["10.0.1.2", "down"]
        assert results[0].ok
        assert isinstance(results[1].error, UnavailableError)
        assert "connection refused" in results[1].error.message
        # Bootstrap on a node that just booted, then started, then already done.
        with pytest.raises(TransientAPIError, match="time is not in sync yet"):
            await talos.bootstrap()
        assert await talos.bootstrap() is BootstrapOutcome.STARTED
        assert await talos.bootstrap() is BootstrapOutcome.ALREADY_BOOTSTRAPPED
        # A server stream, in chunks: the tar.gz Talos sends the kubeconfig as.
        kubeconfig = yaml.safe_load(await talos.kubeconfig())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://203.0.113.10:6443"


async def test_roles_and_a_foreign_ca(served: tuple[str, SecretsBundle]) -> None:
    address, bundle = served
    async with _client(address, bundle, roles=("os:reader",)) as reader:
        assert (await reader.version())[0].ok
        with pytest.raises(AuthError, match="not authorized"):
            await reader.bootstrap()
    other = generate_secrets()
    talosconfig = generate_talosconfig("demo", other.os_ca, endpoints=[address])
    foreign = TalosCredentials(bundle.os_ca.cert_pem, talosconfig.crt_pem, talosconfig.key_pem)
    async with TalosClient([address], credentials=foreign, timing=FAST) as talos:
        with pytest.raises(AuthError):
            await talos.version()
