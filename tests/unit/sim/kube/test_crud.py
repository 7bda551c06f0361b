"""Create/get/replace/patch/delete and list selectors on Secrets and ConfigMaps, with the
error Status objects the real API server returns (apimachinery ``errors`` package)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from kubernetes.client import ApiClient, CoreV1Api, V1ConfigMap, V1ObjectMeta, V1Secret
from kubernetes.client.exceptions import ApiException


async def _raises(fn: object, *args: object, **kwargs: object) -> tuple[int, dict[str, object]]:
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(fn, *args, **kwargs)  # type: ignore[arg-type]
    status, body = caught.value.status, json.loads(caught.value.body)
    del caught
    return status, body


async def test_secret_lifecycle(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    secret = V1Secret(
        metadata=V1ObjectMeta(name="hcloud", labels={"app": "ccm"}),
        string_data={"token": "s3cret"},
    )
    created = await asyncio.to_thread(core.create_namespaced_secret, "kube-system", secret)
    assert created.type == "Opaque"
    assert created.data == {"token": base64.b64encode(b"s3cret").decode()}
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.managed_fields[0].manager == "OpenAPI-Generator"

    status, body = await _raises(core.create_namespaced_secret, "kube-system", secret)
    assert status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'secrets "hcloud" already exists'

    fetched = await asyncio.to_thread(core.read_namespaced_secret, "hcloud", "kube-system")
    fetched.data["network"] = base64.b64encode(b"42").decode()
    replaced = await asyncio.to_thread(
        core.replace_namespaced_secret, "hcloud", "kube-system", fetched
    )
    assert int(replaced.metadata.resource_version) > int(fetched.metadata.resource_version)

    # The copy read before the replace is stale now: optimistic concurrency says 409 Conflict.
    status, body = await _raises(core.replace_namespaced_secret, "hcloud", "kube-system", fetched)
    assert status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in str(body["message"])

    deleted = await asyncio.to_thread(core.delete_namespaced_secret, "hcloud", "kube-system")
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "hcloud"
    status, body = await _raises(core.read_namespaced_secret, "hcloud", "kube-system")
    assert status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "hcloud" not found',
        "reason": "NotFound",
        "details": {"name": "hcloud", "kind": "secrets"},
        "code": 404,
    }


async def test_configmap_patches(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    cm = V1ConfigMap(metadata=V1ObjectMeta(name="values"), data={"a": "1", "b": "2"})
    await asyncio.to_thread(core.create_namespaced_config_map, "default", cm)
    # A dict body is sent as a strategic merge patch by the client (rest.py).
    patched = await asyncio.to_thread(
        core.patch_namespaced_config_map, "values", "default", {"data": {"a": "9", "b": None}}
    )
    assert patched.data == {"a": "9"}
    merged = await asyncio.to_thread(
        core.patch_namespaced_config_map,
        "values",
        "default",
        {"metadata": {"labels": {"x": "y"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"x": "y"} and merged.data == {"a": "9"}
    json_patched = await asyncio.to_thread(
        core.patch_namespaced_config_map,
        "values",
        "default",
        [{"op": "add", "path": "/data/c", "value": "3"}],
    )
    assert json_patched.data == {"a": "9", "c": "3"}


async def test_create_in_missing_namespace_and_invalid_name(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    status, body = await _raises(
        core.create_namespaced_config_map, "nope", V1ConfigMap(metadata=V1ObjectMeta(name="x"))
    )
    assert (status, body["message"]) == (404, 'namespaces "nope" not found')
    status, body = await _raises(
        core.create_namespaced_config_map, "default", V1ConfigMap(metadata=V1ObjectMeta(name="X_"))
    )
    assert status == 422 and body["reason"] == "Invalid"
    assert str(body["message"]).startswith('ConfigMap "X_" is invalid: metadata.name: Invalid')


async def test_list_with_label_and_field_selectors(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        meta = V1ObjectMeta(name=name, labels={"tier": tier, "app": "shop"})
        await asyncio.to_thread(
            core.create_namespaced_config_map, "default", V1ConfigMap(metadata=meta)
        )

    async def names(**kwargs: str) -> list[str]:
        found = await asyncio.to_thread(core.list_namespaced_config_map, "default", **kwargs)
        return [c.metadata.name for c in found.items]

    assert await names(label_selector="tier=web") == ["a", "c"]
    assert await names(label_selector="tier!=web,app") == ["b"]
    assert await names(label_selector="tier in (db,cache)") == ["b"]
    assert not {"a", "b", "c"} & set(await names(label_selector="!app"))
    assert await names(field_selector="metadata.name=c") == ["c"]
    assert await names(label_selector="app=shop", field_selector="metadata.name!=a") == ["b", "c"]
    status, body = await _raises(
        core.list_namespaced_config_map, "default", field_selector="data.a=1"
    )
    assert (status, body["message"]) == (400, "field label not supported: data.a")
    page = await asyncio.to_thread(
        core.list_namespaced_config_map, "default", label_selector="app=shop", limit=2
    )
    assert [c.metadata.name for c in page.items] == ["a", "b"] and page.metadata._continue
    rest = await asyncio.to_thread(
        core.list_namespaced_config_map,
        "default",
        label_selector="app=shop",
        limit=2,
        _continue=page.metadata._continue,
    )
    assert [c.metadata.name for c in rest.items] == ["c"]


async def test_namespace_deletion_empties_then_removes_it(
    api_client: ApiClient, eventually: object
) -> None:
    core = CoreV1Api(api_client)
    await asyncio.to_thread(core.create_namespace, {"metadata": {"name": "apps"}})
    await asyncio.to_thread(
        core.create_namespaced_config_map, "apps", V1ConfigMap(metadata=V1ObjectMeta(name="c"))
    )
    await asyncio.to_thread(core.delete_namespace, "apps")

    def gone() -> bool:
        try:
            core.read_namespace("apps")
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(gone, "namespace removed")  # type: ignore[operator]
    status, _body = await _raises(core.read_namespaced_config_map, "c", "apps")
    assert status == 404


async def test_dry_run_validates_without_persisting(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    cm = V1ConfigMap(metadata=V1ObjectMeta(name="dry"), data={"a": "1"})
    created = await asyncio.to_thread(
        core.create_namespaced_config_map, "default", cm, dry_run="All"
    )
    assert created.metadata.uid and created.data == {"a": "1"}
    status, _ = await _raises(core.read_namespaced_config_map, "dry", "default")
    assert status == 404
    status, body = await _raises(core.create_namespaced_config_map, "nope", cm, dry_run="All")
    assert (status, body["reason"]) == (404, "NotFound")


async def test_services_get_a_cluster_ip(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    spec = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    first = await asyncio.to_thread(
        core.create_namespaced_service, "default", {"metadata": {"name": "web"}, "spec": spec}
    )
    second = await asyncio.to_thread(
        core.create_namespaced_service, "default", {"metadata": {"name": "api"}, "spec": spec}
    )
    assert first.spec.cluster_ip.startswith("10.96.") and first.spec.type == "ClusterIP"
    assert second.spec.cluster_ip != first.spec.cluster_ip
    assert first.spec.ports[0].protocol == "TCP" and first.spec.ports[0].target_port == 80
    headless = await asyncio.to_thread(
        core.create_namespaced_service,
        "default",
        {"metadata": {"name": "db"}, "spec": {**spec, "clusterIP": "None"}},
    )
    assert headless.spec.cluster_ip == "None"
