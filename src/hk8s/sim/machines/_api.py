"""What the simulated machines share as API clients: resource paths and watched caches.

``Resources`` finds a kind's path the way client-go's RESTMapper does, from the server's
discovery documents (``/api/v1``, ``/apis/<group>/<version>``), so a chart may hold any kind
the real server serves. ``Informer`` keeps a list+watch cache of one collection, relisting on
``410 Gone`` as client-go's reflector does, and sets an event on every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from hk8s.sim.k8s import ApiError, WatchExpired

if TYPE_CHECKING:
    from hk8s.sim.k8s import KubeClient

__all__ = ["Informer", "Obj", "Resources", "object_key"]

Obj = dict[str, Any]
log = logging.getLogger(__name__)
_RETRY = 0.5  # wall seconds between attempts while the API server does not answer


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class Resources:
    """``apiVersion``/``kind`` -> URL paths, from the server's discovery."""

    def __init__(self, api: KubeClient) -> None:
        self.api = api
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}

    async def _lookup(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._kinds:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = await self.api.get(base)
            for resource in listing.get("resources") or []:
                if "/" not in resource["name"]:
                    self._kinds[(api_version, resource["kind"])] = (
                        f"{base}/{resource['name']}",
                        bool(resource.get("namespaced")),
                    )
        if key not in self._kinds:
            raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in "{api_version}"')
        return self._kinds[key]

    async def path(self, api_version: str, kind: str, namespace: str, name: str = "") -> str:
        """``/apis/apps/v1/namespaces/kube-system/deployments[/name]``."""
        collection, namespaced = await self._lookup(api_version, kind)
        head, _, plural = collection.rpartition("/")
        if namespaced:
            collection = f"{head}/namespaces/{namespace}/{plural}"
        return f"{collection}/{name}" if name else collection

    async def namespaced(self, api_version: str, kind: str) -> bool:
        return (await self._lookup(api_version, kind))[1]


class Informer:
    """A list+watch cache of ``path`` (``items`` by ``namespace/name``)."""

    def __init__(self, api: KubeClient, path: str, changed: asyncio.Event, **query: str) -> None:
        self.api, self.path, self.query = api, path, query
        self.changed = changed
        self.items: dict[str, Obj] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                listing = await self.api.get(self.path, **self.query)
                self.items = {object_key(o): o for o in listing.get("items") or []}
                version = str(listing["metadata"].get("resourceVersion", ""))
                self.synced.set()
                self.changed.set()
                while True:
                    events = self.api.watch(self.path, resource_version=version, **self.query)  # type: ignore[arg-type]
                    async for kind, obj in events:
                        version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                        if kind == "BOOKMARK":
                            continue
                        if kind == "DELETED":
                            self.items.pop(object_key(obj), None)
                        else:
                            self.items[object_key(obj)] = obj
                        self.changed.set()
            except WatchExpired:
                continue
            except (ApiError, OSError, TimeoutError, ValueError) as exc:
                log.debug("watch of %s failed (%s); listing again", self.path, exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.sleep(_RETRY)
