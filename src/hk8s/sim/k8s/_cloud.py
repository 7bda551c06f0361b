"""The Hetzner credentials a cluster's cloud components read, and their API client.

hcloud-cloud-controller-manager and the csi-driver read ``HCLOUD_TOKEN`` (and the CCM
``HCLOUD_NETWORK``) from Secret ``kube-system/hcloud``, keys ``token`` and ``network``, as
their charts wire it (both charts' ``values.yaml``; hk8s writes that Secret,
``manifests/hcloud-secret.yaml``). The simulated components read the same Secret through
the API server, so a cluster without it gets no load balancers and no volumes, as a real one.
They talk to the simulated Hetzner API with hcloud-python, one of the official clients,
in a worker thread (the API may be served by the same event loop).
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from hcloud import Client

if TYPE_CHECKING:
    from collections.abc import Callable

    from hk8s.sim.k8s._client import KubeClient

__all__ = ["CloudCredentials", "HcloudAccess", "MissingCredentials", "blocking"]

SECRET_PATH = "/api/v1/namespaces/kube-system/secrets/hcloud"
T = TypeVar("T")


class MissingCredentials(Exception):
    """Secret kube-system/hcloud (or its ``token``) is not there yet."""


@dataclass(frozen=True)
class CloudCredentials:
    token: str
    network: str | None  # HCLOUD_NETWORK: a network's ID or name


def _decode(data: dict[str, str], key: str) -> str:
    raw = data.get(key)
    return base64.b64decode(raw).decode().strip() if raw else ""


async def blocking(fn: Callable[[], T]) -> T:
    """Run one blocking hcloud-python call off the event loop."""
    return await asyncio.to_thread(fn)


class HcloudAccess:
    """An hcloud client for the token in the cluster's Secret, remade when the token changes."""

    def __init__(
        self, api: KubeClient, endpoint: str, *, agent: str, poll_interval: float = 0.2
    ) -> None:
        # ``agent`` names the addon in its User-Agent, as the real CCM and CSI driver name
        # themselves: the Hetzner simulator tells their requests from hk8s' own by it.
        self.api, self.endpoint, self.poll_interval = api, endpoint, poll_interval
        self.agent = agent
        self._client: Client | None = None
        self._token = ""

    async def credentials(self) -> CloudCredentials:
        secret = await self.api.get_or_none(SECRET_PATH)
        if secret is None:
            raise MissingCredentials("Secret kube-system/hcloud not found")
        data = secret.get("data") or {}
        token = _decode(data, "token")
        if not token:
            raise MissingCredentials("Secret kube-system/hcloud has no key token")
        return CloudCredentials(token, _decode(data, "network") or None)

    async def client(self) -> tuple[Client, CloudCredentials]:
        creds = await self.credentials()
        if self._client is None or creds.token != self._token:
            self._client = Client(
                token=creds.token,
                api_endpoint=self.endpoint,
                application_name=self.agent,
                poll_interval=self.poll_interval,
                timeout=30,
            )
            self._token = creds.token
        return self._client, creds
