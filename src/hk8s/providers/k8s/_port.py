"""The Kubernetes port: what create, upgrade, scaling and destroy need from a cluster's API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hk8s.providers.k8s._types import KubeNode, ObjectRef

__all__ = ["KubernetesAPI"]


class KubernetesAPI(Protocol):
    """One cluster's Kubernetes API. ``KubeClient`` implements it; tests may fake it.

    Objects are plain dicts (what ``render_*_manifests`` return); results are hk8s types.
    Waits raise ``WaitTimeoutError`` naming the condition and what was last seen.
    (``list`` is declared last: below it, the name shadows the builtin in annotations.)
    """

    async def apply(
        self, objects: Iterable[Mapping[str, Any]], *, field_manager: str = "hk8s"
    ) -> list[ObjectRef]: ...

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    async def delete(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> bool: ...

    async def wait_api_ready(self, *, timeout: float | None = None) -> None: ...

    async def wait_nodes_ready(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        booted_since: Mapping[str, str | None] | None = None,
    ) -> list[KubeNode]: ...

    async def wait_rollout(
        self, kind: str, namespace: str, name: str, *, timeout: float | None = None
    ) -> None: ...

    async def wait_job(
        self, namespace: str, name: str, *, timeout: float | None = None
    ) -> None: ...

    async def wait_served(
        self, api_version: str, kind: str, *, timeout: float | None = None
    ) -> None: ...

    async def retry_failed_job(self, namespace: str, name: str) -> bool: ...

    async def list_nodes(self, *, retry: bool = True) -> list[KubeNode]: ...

    async def cordon(self, node: str) -> None: ...

    async def uncordon(self, node: str, *, annotation: str | None = None) -> None: ...

    async def drain(self, node: str, *, timeout: float | None = None) -> list[ObjectRef]: ...

    async def delete_node(self, node: str) -> bool: ...

    async def list_load_balancer_services(self) -> list[ObjectRef]: ...

    async def delete_load_balancer_services(self) -> list[ObjectRef]: ...

    async def list_pvcs(self) -> list[ObjectRef]: ...

    async def delete_pvcs(self) -> list[ObjectRef]: ...

    async def list_persistent_volumes(self) -> list[ObjectRef]: ...

    async def close(self) -> None: ...

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...
