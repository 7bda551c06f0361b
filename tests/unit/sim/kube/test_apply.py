"""Server-side apply: the request hk8s sends, field managers, conflicts and field removal.

Conflict messages and causes follow apiserver's fieldmanager ``NewConflictError``:
``Apply failed with 1 conflict: conflict with "helm": .data.mode``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

APPLY = "application/apply-patch+yaml"


def hk8s_apply(
    api: ApiClient, path: str, obj: dict[str, Any], manager: str, *, force: bool = True
) -> tuple[int, dict[str, Any]]:
    """Exactly what hk8s.providers.k8s sends: param_serialize + call_api, JSON body.

    ``call_api`` returns the raw response for any status (the caller maps errors)."""
    query = [("fieldManager", manager)] + ([("force", "true")] if force else [])
    method, url, headers, body, _ = api.param_serialize(
        method="PATCH",
        resource_path=path,
        query_params=query,
        header_params={"Accept": "application/json, */*", "Content-Type": APPLY},
        body=json.dumps(obj),
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=body, _request_timeout=10)
    return response.status, json.loads(response.read())


def _cm(data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "settings", "namespace": "default"}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


PATH = "/api/v1/namespaces/default/configmaps/settings"


async def test_apply_creates_then_is_idempotent(api_client: ApiClient) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hcloud", "namespace": "kube-system"},
        "type": "Opaque",
        "stringData": {"token": "t0ken", "network": "42"},
    }
    path = "/api/v1/namespaces/kube-system/secrets/hcloud"
    status, first = await asyncio.to_thread(hk8s_apply, api_client, path, secret, "hk8s")
    assert status == 200
    assert set(first["data"]) == {"token", "network"} and "stringData" not in first
    _, again = await asyncio.to_thread(hk8s_apply, api_client, path, secret, "hk8s")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    entry = first["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == (
        "hk8s",
        "Apply",
        "FieldsV1",
    )


async def test_conflict_with_another_manager_then_force(api_client: ApiClient) -> None:
    await asyncio.to_thread(hk8s_apply, api_client, PATH, _cm({"mode": "a"}), "helm")
    # Same value: shared ownership, no conflict.
    await asyncio.to_thread(hk8s_apply, api_client, PATH, _cm({"mode": "a"}), "hk8s", force=False)
    status, body = await asyncio.to_thread(
        hk8s_apply, api_client, PATH, _cm({"mode": "b", "x": "1"}), "other", force=False
    )
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (
        'Apply failed with 2 conflicts: conflicts with "helm":\n- .data.mode\n'
        'conflicts with "hk8s":\n- .data.mode'
    )
    assert {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "helm"',
        "field": ".data.mode",
    } in body["details"]["causes"]

    status, obj = await asyncio.to_thread(
        hk8s_apply, api_client, PATH, _cm({"mode": "b"}), "other", force=True
    )
    assert obj["data"] == {"mode": "b"}
    owners = {e["manager"]: e.get("fieldsV1", {}) for e in obj["metadata"]["managedFields"]}
    assert owners == {"other": {"f:data": {"f:mode": {}}}}


async def test_single_conflict_message_names_update_manager(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    await asyncio.to_thread(hk8s_apply, api_client, PATH, _cm({"mode": "a"}), "hk8s")
    await asyncio.to_thread(
        core.patch_namespaced_config_map,
        "settings",
        "default",
        {"data": {"mode": "edited"}},
        field_manager="kubectl-edit",
        _content_type="application/merge-patch+json",
    )
    status, body = await asyncio.to_thread(
        hk8s_apply, api_client, PATH, _cm({"mode": "a"}), "hk8s", force=False
    )
    assert status == 409
    assert (
        body["message"]
        == 'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.mode'
    )


async def test_fields_no_longer_applied_are_removed(api_client: ApiClient) -> None:
    await asyncio.to_thread(
        hk8s_apply, api_client, PATH, _cm({"a": "1", "b": "2"}, {"x": "1", "y": "2"}), "hk8s"
    )
    _, obj = await asyncio.to_thread(
        hk8s_apply, api_client, PATH, _cm({"a": "1"}, {"x": "1"}), "hk8s"
    )
    assert obj["data"] == {"a": "1"} and obj["metadata"]["labels"] == {"x": "1"}


async def test_apply_requires_field_manager(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(
            core.patch_namespaced_config_map, "settings", "default", _cm({}), _content_type=APPLY
        )
    status, message = caught.value.status, json.loads(caught.value.body)["message"]
    del caught
    assert status == 422
    assert "fieldManager: Required value: is required for apply patch" in message


async def test_generated_api_and_dynamic_client_apply(api_client: ApiClient) -> None:
    core = CoreV1Api(api_client)
    applied = await asyncio.to_thread(
        core.patch_namespaced_config_map,
        "settings",
        "default",
        _cm({"k": "v"}),
        field_manager="hk8s",
        force=True,
        _content_type=APPLY,
    )
    assert applied.data == {"k": "v"}

    dynamic = await asyncio.to_thread(DynamicClient, api_client)
    deployments = await asyncio.to_thread(
        dynamic.resources.get, api_version="apps/v1", kind="Deployment"
    )
    labels = {"app": "web"}
    manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    created = await asyncio.to_thread(
        deployments.server_side_apply, body=manifest, field_manager="hk8s"
    )
    assert created.spec.replicas == 2
    await asyncio.to_thread(
        deployments.patch,
        name="web",
        namespace="default",
        body={"spec": {"replicas": 5}},
        content_type="application/merge-patch+json",
        field_manager="kubectl-scale",
    )
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(deployments.server_side_apply, body=manifest, field_manager="hk8s")
    status, message = caught.value.status, json.loads(caught.value.body)["message"]
    del caught
    assert status == 409
    assert message == (
        'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    )
    forced = await asyncio.to_thread(
        deployments.server_side_apply, body=manifest, field_manager="hk8s", force_conflicts=True
    )
    assert forced.spec.replicas == 2
