"""A simulated API server per test, and the official kubernetes client pointed at it.

The sim runs on a fast ``ScaledClock``; tests wait for conditions with ``eventually`` (polls
through the same clock with a deadline), and call the blocking client in a worker thread so
the server keeps running on the test's event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from kubernetes.client import ApiClient, Configuration

from hk8s.model import ScaledClock
from hk8s.pki import (
    CertAndKey,
    KeyAlgorithm,
    create_ca,
    generate_admin_kubeconfig,
    issue_kube_admin_cert,
    to_pkcs8_pem,
)
from hk8s.sim.kube import KubeAPI, Timings

if TYPE_CHECKING:
    from pathlib import Path

T = TypeVar("T")
SPEED = 200.0


@pytest.fixture(scope="session")
def k8s_ca() -> CertAndKey:
    # Talos' certs.k8s: ECDSA P-256, O=kubernetes.
    return create_ca(
        algorithm=KeyAlgorithm.ECDSA_P256, organization="kubernetes", now=dt.datetime.now(dt.UTC)
    )


@pytest.fixture
async def kube(k8s_ca: CertAndKey) -> AsyncIterator[KubeAPI]:
    server_ids = {"demo-cp-1": 101, "demo-w-1": 201, "demo-w-2": 202}
    api = KubeAPI(
        k8s_ca.cert_pem,
        k8s_ca.key_pem,
        ScaledClock(SPEED),
        cloud_instance=server_ids.get,
        timings=Timings(),
        seed=1,
    )
    await api.serve("127.0.0.1", 0)
    yield api
    await api.stop()


@pytest.fixture
def client_files(tmp_path: Path, k8s_ca: CertAndKey) -> dict[str, str]:
    admin = issue_kube_admin_cert(k8s_ca, now=dt.datetime.now(dt.UTC))
    files = {"ca": k8s_ca.cert_pem, "cert": admin.cert_pem, "key": to_pkcs8_pem(admin.key_pem)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: str(tmp_path / name) for name in files}


@pytest.fixture
def api_client(kube: KubeAPI, client_files: dict[str, str]) -> Iterator[ApiClient]:
    """``ApiClient`` from a ``Configuration`` with client cert/key files and the CA."""
    configuration = Configuration()
    configuration.host = kube.urls[0]
    configuration.ssl_ca_cert = client_files["ca"]
    configuration.cert_file = client_files["cert"]
    configuration.key_file = client_files["key"]
    client = ApiClient(configuration)
    yield client
    client.close()


@pytest.fixture
def kubeconfig(kube: KubeAPI, k8s_ca: CertAndKey) -> dict[str, Any]:
    """The admin kubeconfig hk8s writes (hk8s.pki), as a dict."""
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(generate_admin_kubeconfig("demo", k8s_ca, kube.urls[0]))
    return loaded


Waiter = Callable[..., Awaitable[Any]]


@pytest.fixture
def eventually(kube: KubeAPI) -> Waiter:
    """``await eventually(check, what)``: poll blocking ``check`` (in a thread) through the
    sim clock until it returns something truthy, and return that."""

    async def wait(check: Callable[[], T], what: str, timeout: float = 900.0) -> T:
        deadline = kube.clock.now() + timeout
        last: Any = None
        while kube.clock.now() < deadline:
            last = await asyncio.to_thread(check)
            if last:
                return last  # type: ignore[no-any-return]
            await kube.clock.sleep(2.0)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}")

    return wait
