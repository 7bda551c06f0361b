"""Discovery documents and client-certificate authentication, through the official client."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import urllib.request
from typing import TYPE_CHECKING

import pytest
from kubernetes.client import (
    ApiClient,
    ApisApi,
    AppsV1Api,
    Configuration,
    CoreV1Api,
    VersionApi,
)
from kubernetes.client.exceptions import ApiException
from kubernetes.config import new_client_from_config_dict

from hk8s.pki import KeyAlgorithm, create_ca, issue_kube_admin_cert, to_pkcs8_pem

if TYPE_CHECKING:
    from pathlib import Path

    from hk8s.sim.kube import KubeAPI


async def test_discovery_lists_core_and_group_resources(api_client: ApiClient) -> None:
    core = await asyncio.to_thread(CoreV1Api(api_client).get_api_resources)
    by_name = {r.name: r for r in core.resources}
    assert by_name["pods"].namespaced and by_name["pods"].kind == "Pod"
    assert by_name["pods/eviction"].group == "policy"
    assert not by_name["nodes"].namespaced
    groups = await asyncio.to_thread(ApisApi(api_client).get_api_versions)
    names = {g.name: g.preferred_version.group_version for g in groups.groups}
    assert names["apps"] == "apps/v1"
    assert names["rbac.authorization.k8s.io"] == "rbac.authorization.k8s.io/v1"
    apps = await asyncio.to_thread(AppsV1Api(api_client).get_api_resources)
    assert {"deployments", "daemonsets", "replicasets"} <= {r.name for r in apps.resources}
    version = await asyncio.to_thread(VersionApi(api_client).get_code)
    assert version.git_version == "v1.34.1"


async def test_admin_kubeconfig_from_hk8s_pki_works(kubeconfig: dict[str, object]) -> None:
    client = new_client_from_config_dict(kubeconfig, persist_config=False)
    namespaces = await asyncio.to_thread(CoreV1Api(client).list_namespace)
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= {
        n.metadata.name for n in namespaces.items
    }
    client.close()


async def test_request_without_client_cert_is_401(
    kube: KubeAPI, client_files: dict[str, str]
) -> None:
    configuration = Configuration()
    configuration.host = kube.urls[0]
    configuration.ssl_ca_cert = client_files["ca"]
    client = ApiClient(configuration)
    with pytest.raises(ApiException) as caught:
        await asyncio.to_thread(CoreV1Api(client).list_namespace)
    status, body = caught.value.status, json.loads(caught.value.body)
    del caught  # the exception holds the connection open
    client.close()
    assert status == 401
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)


async def test_health_endpoints_answer_anonymously(
    kube: KubeAPI, client_files: dict[str, str]
) -> None:
    context = ssl.create_default_context(cafile=client_files["ca"])

    def get(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(kube.urls[0] + path, context=context) as response:
            return response.status, response.read().decode()

    assert await asyncio.to_thread(get, "/readyz") == (200, "ok")
    _status, text = await asyncio.to_thread(get, "/version")
    assert json.loads(text)["major"] == "1"
    kube.available = False
    with pytest.raises(urllib.error.HTTPError) as caught:
        await asyncio.to_thread(get, "/readyz")
    assert caught.value.code == 503


async def test_client_cert_of_another_ca_is_refused(
    kube: KubeAPI, client_files: dict[str, str], tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    other = issue_kube_admin_cert(create_ca(algorithm=KeyAlgorithm.ECDSA_P256, now=now), now=now)
    (tmp_path / "other.crt").write_bytes(other.cert_pem)
    (tmp_path / "other.key").write_bytes(to_pkcs8_pem(other.key_pem))
    configuration = Configuration()
    configuration.host = kube.urls[0]
    configuration.ssl_ca_cert = client_files["ca"]
    configuration.cert_file = str(tmp_path / "other.crt")
    configuration.key_file = str(tmp_path / "other.key")
    configuration.retries = False
    client = ApiClient(configuration)
    with pytest.raises(Exception) as caught:  # the TLS handshake fails: no HTTP status at all
        await asyncio.to_thread(CoreV1Api(client).list_namespace, _request_timeout=5)
    client.close()
    assert not isinstance(caught.value, ApiException) or caught.value.status in (0, None)
