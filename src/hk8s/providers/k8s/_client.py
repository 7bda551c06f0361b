"""The Kubernetes transport: requests through the official client, errors into ``hk8s.errors``.

hk8s applies a handful of kinds it knows (its own objects, nodes, pods, workloads), so it
builds resource paths from ``apiVersion``/``kind`` with a small table and falls back to API
discovery for anything else, then sends raw requests through ``ApiClient.param_serialize`` /
``call_api`` (TLS, client certificates and tokens from the kubeconfig, no generated models).
The client is blocking: each request runs in a worker thread, with ``_request_timeout`` set.

No global state: the client is built from a kubeconfig file or dict with
``KubeConfigLoader(...).load_and_set(own Configuration)``, never ``load_kube_config()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

import urllib3
import yaml
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException, kube_config

from hk8s.errors import (
    AuthError,
    ConflictError,
    Hk8sError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TransientAPIError,
    UnavailableError,
)
from hk8s.model import changes
from hk8s.model.net import rewrite_port
from hk8s.providers.k8s._material import InlineMaterial
from hk8s.providers.k8s._types import ObjectRef

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence

    from hk8s.model import Clock, Timing

__all__ = ["KubeBase", "KubeResponse", "NoWatchError", "ThrottledError", "error_for"]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"

# (apiVersion, kind) -> (plural, namespaced): the kinds hk8s touches; others use discovery.
_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}


class KubeResponse:
    """Status and body of a request that succeeded (2xx)."""

    def __init__(self, status: int, data: bytes) -> None:
        self.status = status
        self.data = data

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None

    def text(self) -> str:
        return self.data.decode(errors="replace")


def _status_message(data: bytes) -> tuple[str, dict[str, Any]]:
    """The ``message`` of a Kubernetes ``Status`` body, and the body itself."""
    try:
        body = json.loads(data)
    except ValueError:
        return data.decode(errors="replace")[:500], {}
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or ""), body
    return "", {}


class NoWatchError(UnavailableError):
    """A watch could not be had (``KubeBase.watch``): the wait polls instead."""


class ThrottledError(RateLimitedError):
    """HTTP 429 from the Kubernetes API; ``body`` is its ``Status`` (an eviction blocked by a
    PodDisruptionBudget names the budget in ``details.causes``)."""

    def __init__(
        self, message: str, *, reset_at: float | None, body: dict[str, Any], status: int
    ) -> None:
        super().__init__(message, reset_at=reset_at, status=status)
        self.body = body


def error_for(status: int, data: bytes, what: str, *, now: float, headers: Any = None) -> Hk8sError:
    """Translate an HTTP error status of the Kubernetes API into the hk8s error tree."""
    message, body = _status_message(data)
    text = f"{what}: {message}" if message else f"{what}: HTTP {status}"
    if status == 401:
        return AuthError(
            f"{what}: the Kubernetes API refused the client credentials",
            hint="regenerate the kubeconfig with `hk8s kubeconfig`",
            status=status,
        )
    if status == 403:
        return AuthError(text, status=status)
    if status == 404:
        return NotFoundError(text, status=status)
    if status == 409:
        return ConflictError(text, status=status)
    if status == 429:
        retry_after = None
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            retry_after = float(headers.get("Retry-After"))
        reset_at = None if retry_after is None else now + retry_after
        return ThrottledError(text, reset_at=reset_at, body=body, status=status)
    if status >= 500:
        return TransientAPIError(text, status=status)
    return PermanentError(text, status=status)


def _rewrite_server(server: str, environ: Mapping[str, str] | None) -> str:
    """The kubeconfig's server URL with its port passed through ``HK8S_PORT_MAP``."""
    parts = urlsplit(server)
    if not parts.hostname:
        return server
    default_port = 443 if parts.scheme == "https" else 80
    host, port = rewrite_port(parts.hostname, parts.port or default_port, environ)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class KubeBase:
    """Requests and the generic verbs (apply, get, list, delete). See ``KubeClient``."""

    def __init__(
        self,
        api: ApiClient,
        *,
        clock: Clock,
        timing: Timing,
        material: InlineMaterial | None = None,
    ) -> None:
        self._api = api
        self._material = material
        self._clock = clock
        self._timing = timing
        self._discovered: dict[tuple[str, str], tuple[str, bool]] = {}
        self._tls: ssl.SSLContext | None = None  # the watches' (``_watch_tls``)

    @classmethod
    def from_kubeconfig(
        cls,
        source: str | Path | Mapping[str, Any],
        *,
        clock: Clock,
        timing: Timing,
        context: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """A client for the cluster of a kubeconfig file (path) or parsed kubeconfig (dict).

        The server address honours ``HK8S_PORT_MAP`` like every hk8s connector.
        """
        base_path = None
        material = InlineMaterial()
        try:
            if isinstance(source, (str, Path)):
                base_path = str(Path(source).resolve().parent)
                document = yaml.safe_load(Path(source).read_text())
            else:
                document = copy.deepcopy(dict(source))
            if not isinstance(document, dict):
                raise ConfigException("not a kubeconfig document")
            for entry in document.get("clusters") or []:
                cluster = entry.get("cluster") or {}
                if cluster.get("server"):
                    cluster["server"] = _rewrite_server(str(cluster["server"]), environ)
            # The loader keeps the dict and re-reads it on token refresh (resetting the host),
            # hence the rewrite above rather than on the finished Configuration.
            material.externalise(document)
            configuration = Configuration()
            loader = kube_config.KubeConfigLoader(  # type: ignore[no-untyped-call]
                config_dict=document, active_context=context, config_base_path=base_path
            )
            loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError, yaml.YAMLError, KeyError, ValueError) as exc:
            material.close()
            raise PermanentError(
                f"cannot use the kubeconfig: {exc}",
                hint="regenerate it with `hk8s kubeconfig`",
            ) from exc
        # One attempt per request: hk8s retries with its own backoff through the clock.
        configuration.retries = False
        api = ApiClient(configuration)
        return cls(api, clock=clock, timing=timing, material=material)

    @classmethod
    def from_kubeconfig_text(
        cls,
        text: str,
        *,
        clock: Clock,
        timing: Timing,
        context: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """Like ``from_kubeconfig`` for kubeconfig YAML in memory (what Talos returns)."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PermanentError(f"cannot use the kubeconfig: {exc}") from exc
        if not isinstance(document, dict):
            raise PermanentError("cannot use the kubeconfig: not a kubeconfig document")
        return cls.from_kubeconfig(
            document, clock=clock, timing=timing, context=context, environ=environ
        )

    async def close(self) -> None:
        await asyncio.to_thread(self._api.close)
        if self._material is not None:
            self._material.close()

    # -- requests ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        content_type: str | None,
    ) -> tuple[int, bytes, Any]:
        headers = {"Accept": "application/json, */*"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        seconds = max(2.0, self._timing.request_timeout)
        response = self._api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=(seconds, seconds)
        )
        return response.status, response.read() or b"", response.headers  # type: ignore[no-untyped-call]

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        retry: bool = True,
    ) -> KubeResponse:
        """One API request; retryable failures are retried with backoff unless ``retry=False``.

        ``body`` is JSON-encoded by the client's REST layer, for JSON content types and for
        apply patches alike (JSON is YAML).
        """
        what = f"{method} {path}"
        attempts = self._timing.retry_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                status, data, headers = await asyncio.to_thread(
                    self._send, method, path, tuple(query), body, content_type
                )
            except ApiException as exc:  # only raised for TLS failures (status 0)
                if "CERTIFICATE_VERIFY_FAILED" in str(exc.reason):
                    raise AuthError(
                        f"{what}: the API server's certificate is not signed by the cluster CA",
                        hint="regenerate the kubeconfig with `hk8s kubeconfig`",
                    ) from exc
                error: Hk8sError = UnavailableError(f"{what}: TLS failed: {exc.reason}")
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error = UnavailableError(f"{what}: Kubernetes API not reachable: {exc}")
            else:
                if 200 <= status < 300:
                    if method not in ("GET", "HEAD"):
                        changes.record("kubernetes")
                    return KubeResponse(status, data)
                error = error_for(status, data, what, now=self._clock.now(), headers=headers)
            if not error.retryable or attempt == attempts:
                raise error
            wait = self._timing.retry_delay(attempt)
            if isinstance(error, RateLimitedError) and error.reset_at is not None:
                wait = max(wait, error.reset_at - self._clock.now())
            await self._clock.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- watches ----------------------------------------------------------------------------

    def _watch_tls(self) -> ssl.SSLContext | None:
        """The TLS context of the kubeconfig's credentials (what the request pool uses), made
        once per client; None for a plain-HTTP server."""
        config = self._api.configuration
        if not str(config.host).startswith("https:"):
            return None
        if self._tls is None:
            context = ssl.create_default_context(cafile=config.ssl_ca_cert)
            if not config.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif config.assert_hostname is False:
                context.check_hostname = False
            if config.cert_file:
                context.load_cert_chain(config.cert_file, config.key_file)
            self._tls = context
        return self._tls

    async def watch(
        self,
        path: str,
        resource_version: str,
        limit: float,
        *,
        query: Iterable[tuple[str, str]] = (),
    ) -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        """The events (``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK``, ``ERROR``; the
        object) of the collection at ``path`` (``query``: its selectors) after
        ``resource_version``, as the API server sends them, until it ends the watch after
        ``limit`` seconds. ``NoWatchError`` when no watch can be had (an error answer, the
        API not reachable, a proxy in the kubeconfig): the caller polls instead.

        A plain HTTP/1.1 request on the event loop, with the client's own credentials and
        headers: a cancelled wait ends it at once, where a blocking request in a worker
        thread would run on to its timeout and hold up the process's exit."""
        config = self._api.configuration
        if config.proxy:
            raise NoWatchError(f"watch {path}: not through a proxy")
        seconds = max(1, math.ceil(limit))
        params = [*query, ("resourceVersion", resource_version), ("watch", "1"),
                  ("timeoutSeconds", str(seconds))]  # fmt: skip
        _, url, headers, _, _ = self._api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=params,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        target = urlsplit(url)
        host, port = target.hostname or "", target.port or (443 if target.scheme == "https" else 80)
        connect = max(2.0, self._timing.request_timeout)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds + connect

        def left() -> float:
            return max(0.0, end - loop.time())

        try:
            tls = self._watch_tls()
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, port, ssl=tls,
                    server_hostname=(config.tls_server_name or host) if tls else None,
                ),
                connect,
            )  # fmt: skip
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            raise NoWatchError(f"watch {path}: {exc}") from exc
        try:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            request = f"GET {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            writer.write((request + head + "Connection: close\r\n\r\n").encode())
            status = await asyncio.wait_for(reader.readline(), left())
            if status.split(b" ")[1:2] != [b"200"]:
                raise NoWatchError(f"watch {path}: {status.decode(errors='replace').strip()}")
            fields = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), left())).lower()
            length = re.search(rb"content-length: *(\d+)", fields)
            buffer, more = b"", True
            while more:
                if length is not None:  # one body (an error event at once): all of it
                    data = await asyncio.wait_for(reader.readexactly(int(length[1])), left())
                    more = False
                else:  # chunked: a chunk per event as the server sends it, empty at the end
                    size = int((await asyncio.wait_for(reader.readline(), left())).split(b";")[0]
                               .strip() or b"0", 16)  # fmt: skip
                    data = (await asyncio.wait_for(reader.readexactly(size + 2), left()))[:-2]
                    more = bool(data)
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in [*lines, *([] if more else [buffer])]:
                    if line.strip():
                        event = json.loads(line)
                        yield str(event.get("type")), event.get("object") or {}
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ValueError) as exc:  # fmt: skip
            raise NoWatchError(f"watch {path}: {exc}") from exc
        finally:
            writer.close()

    # -- resource paths ---------------------------------------------------------------------

    async def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        known = _KINDS.get(key) or self._discovered.get(key)
        if known:
            return known
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        listing = (await self.request("GET", base)).json() or {}
        for resource in listing.get("resources", []):
            if resource.get("kind") == kind and "/" not in resource.get("name", ""):
                found = (str(resource["name"]), bool(resource.get("namespaced")))
                self._discovered[key] = found
                return found
        raise NotFoundError(f"the API server does not serve {kind} in {api_version}")

    async def path(
        self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None
    ) -> str:
        """``/apis/apps/v1/namespaces/kube-system/deployments/cilium-operator`` and the like."""
        plural, namespaced = await self._resource(api_version, kind)
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{namespace}"
        elif namespaced and name is not None:
            base += "/namespaces/default"
        return f"{base}/{plural}" + (f"/{name}" if name is not None else "")

    # -- verbs ------------------------------------------------------------------------------

    async def apply(
        self, objects: Iterable[Mapping[str, Any]], *, field_manager: str = "hk8s"
    ) -> list[ObjectRef]:
        """Server-side apply, in order, taking ownership of conflicting fields (``force``).

        Returns references only: the applied objects may hold secrets (the ``hcloud`` Secret).
        """
        applied = []
        for obj in objects:
            ref = ObjectRef.of(dict(obj))
            path = await self.path(ref.api_version, ref.kind, ref.name, ref.namespace)
            await self.request(
                "PATCH",
                path,
                query=[("fieldManager", field_manager), ("force", "true")],
                body=obj,
                content_type=APPLY_PATCH,
            )
            applied.append(ref)
        return applied

    async def get(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or ``None`` when it does not exist."""
        try:
            response = await self.request(
                "GET", await self.path(api_version, kind, name, namespace)
            )
        except NotFoundError:
            return None
        result: dict[str, Any] = response.json()
        return result

    async def list(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every object of a kind (in ``namespace``, or in all namespaces when ``None``).

        A kind the server does not serve (404 on the collection, e.g. a CRD not installed)
        has no objects: ``[]``.
        """
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        try:
            path = await self.path(api_version, kind, None, namespace)
            response = await self.request("GET", path, query=query)
        except NotFoundError:
            return []
        items: list[dict[str, Any]] = (response.json() or {}).get("items") or []
        return items

    async def delete(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None
    ) -> bool:
        """Delete; ``False`` when it was already gone (which is success for hk8s)."""
        try:
            await self.request("DELETE", await self.path(api_version, kind, name, namespace))
        except NotFoundError:
            return False
        return True
