"""Watches through ``kubernetes.watch.Watch``: replay from a resourceVersion, live events,
selector transitions, and the end of the stream at ``timeoutSeconds`` (sim seconds)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kubernetes import watch
from kubernetes.client import ApiClient, Configuration, CoreV1Api, V1ConfigMap, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from hk8s.model import ScaledClock
from hk8s.sim.kube import KubeAPI

if TYPE_CHECKING:
    from hk8s.pki import CertAndKey


def _collect(core: CoreV1Api, rv: str, count: int, **kwargs: Any) -> list[tuple[str, str, str]]:
    events = []
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=rv,
        timeout_seconds=600,
        **kwargs,
    )
    for event in stream:
        obj = event["object"]
        events.append((event["type"], obj.metadata.name, (obj.data or {}).get("v", "")))
        if len(events) == count:
            break
    return events


async def test_watch_replays_and_follows_changes(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    listed = await asyncio.to_thread(core.list_namespaced_config_map, "default")
    rv = listed.metadata.resource_version
    meta = V1ObjectMeta(name="w", labels={"app": "w"})
    # Written before the watch starts: replayed from the resourceVersion of the list.
    await asyncio.to_thread(
        core.create_namespaced_config_map, "default", V1ConfigMap(metadata=meta, data={"v": "1"})
    )
    watcher = asyncio.create_task(asyncio.to_thread(_collect, core, rv, 4, label_selector="app=w"))
    await asyncio.to_thread(core.patch_namespaced_config_map, "w", "default", {"data": {"v": "2"}})
    # Leaving the selection looks like a deletion to this watch; coming back like a creation.
    await asyncio.to_thread(
        core.patch_namespaced_config_map, "w", "default", {"metadata": {"labels": {"app": "x"}}}
    )
    await asyncio.to_thread(
        core.patch_namespaced_config_map, "w", "default", {"metadata": {"labels": {"app": "w"}}}
    )
    events = await asyncio.wait_for(watcher, 30)
    assert events == [
        ("ADDED", "w", "1"),
        ("MODIFIED", "w", "2"),
        ("DELETED", "w", "2"),
        ("ADDED", "w", "2"),
    ]


async def test_watch_without_version_lists_first_and_ends_at_timeout(
    api_client: ApiClient,
) -> None:
    core = CoreV1Api(api_client)
    for name in ("a", "b"):
        await asyncio.to_thread(
            core.create_namespaced_config_map,
            "default",
            V1ConfigMap(metadata=V1ObjectMeta(name=name)),
        )

    def watch_all() -> list[tuple[str, str]]:
        stream = watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            field_selector="metadata.name!=kube-root-ca.crt",
            timeout_seconds=30,
        )
        return [(e["type"], e["object"].metadata.name) for e in stream]

    # The server ends the stream after 30 sim seconds; Watch returns when it does.
    events = await asyncio.wait_for(asyncio.to_thread(watch_all), 30)
    assert events == [("ADDED", "a"), ("ADDED", "b")]


async def test_watch_pods_by_node_sees_deletion(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    listed = await asyncio.to_thread(core.list_pod_for_all_namespaces)
    pod = {
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1"}]},
    }
    # Bound to a node that does not exist: the pod garbage collector deletes it.
    await asyncio.to_thread(core.create_namespaced_pod, "default", pod)

    def watch_node() -> list[tuple[str, str]]:
        out = []
        for event in watch.Watch().stream(
            core.list_pod_for_all_namespaces,
            field_selector="spec.nodeName=n1",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=600,
        ):
            out.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                break
        return out

    events = await asyncio.wait_for(asyncio.to_thread(watch_node), 30)
    assert events[0] == ("ADDED", "p") and events[-1] == ("DELETED", "p")


async def test_watch_from_a_compacted_version_is_410_expired(
    k8s_ca: CertAndKey, client_files: dict[str, str]
) -> None:
    kube = KubeAPI(k8s_ca.cert_pem, k8s_ca.key_pem, ScaledClock(200), watch_history=5)
    await kube.serve("127.0.0.1", 0)
    configuration = Configuration()
    configuration.host = kube.urls[0]
    configuration.ssl_ca_cert = client_files["ca"]
    configuration.cert_file = client_files["cert"]
    configuration.key_file = client_files["key"]
    client = ApiClient(configuration)
    core = CoreV1Api(client)
    for i in range(10):
        await asyncio.to_thread(
            core.create_namespaced_config_map,
            "default",
            V1ConfigMap(metadata=V1ObjectMeta(name=f"c{i}")),
        )

    def old_watch() -> tuple[int, str]:
        try:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version="2", timeout_seconds=60
            ):
                pass
        except ApiException as exc:
            return exc.status, str(exc.reason)
        return 0, ""

    status, reason = await asyncio.to_thread(old_watch)
    client.close()
    await kube.stop()
    assert status == 410 and reason.startswith("Expired: too old resource version: 2 (")
