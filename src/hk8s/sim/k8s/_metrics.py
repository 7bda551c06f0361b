"""``metrics.k8s.io/v1beta1`` for ``kubectl top``, served as metrics-server serves it.

metrics-server (kubernetes-sigs/metrics-server, chart ``charts/metrics-server``) is an
aggregated API server: the chart registers APIService ``v1beta1.metrics.k8s.io`` (group
priority 100, ``insecureSkipTLSVerify``: it serves a self-signed certificate) pointing at
Service ``kube-system/metrics-server`` port 443 (``targetPort: https``, the pod's 10250).
kube-apiserver proxies ``/apis/metrics.k8s.io/v1beta1/...`` to it with the front-proxy client
certificate and the user in ``X-Remote-User``/``X-Remote-Group`` (requestheader
authentication); metrics-server trusts only a certificate from the requestheader CA with an
allowed name, and asks the API server whether that user may read the resource
(SubjectAccessReview, its delegated authorization).

``MetricsServer`` does the same over HTTPS (``hk8s.sim._http``): discovery, NodeMetrics and
PodMetrics (lists with label selectors, single objects) in metrics-server's shapes, for Ready
nodes and Running pods. ``register()`` applies the chart's APIService and Service; whoever
runs it publishes the server's address as the Service's endpoint (the world: the
metrics-server pod; tests: a selector-less Service's EndpointSlice), reachable by the API
server through ``ClusterNetwork``.

Deviations (docs/simulator.md): usage is synthetic, not scraped from kubelets: per pod
container a steady figure derived from its name (a few millicores, tens of MiB) with a small
drift over time, per node the sum of its pods plus a system share; resource requests are not
consulted; ``/metrics``, ``/livez`` and OpenAPI are not served.

>>> metrics = MetricsServer(plane.client(), plane.secrets.aggregator_ca.cert_pem)
>>> task = asyncio.create_task(metrics.run()); await metrics.started()
>>> metrics.port  # publish 10.244.x.y:10250 -> (metrics.host, metrics.port)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import ssl
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from hk8s.model.clock import ScaledClock
from hk8s.model.labels import LabelError, parse_selector
from hk8s.pki import KeyAlgorithm, create_ca, issue_certificate
from hk8s.sim._http import HTTPServer, Request, Response
from hk8s.sim.k8s._client import ApiError
from hk8s.sim.k8s._informer import Informer, key_of

if TYPE_CHECKING:
    from hk8s.model.clock import Clock
    from hk8s.sim.k8s._client import KubeClient

__all__ = ["API_SERVICE", "GROUP_VERSION", "MetricsServer", "chart_objects"]

GROUP_VERSION = "metrics.k8s.io/v1beta1"
API_SERVICE = "v1beta1.metrics.k8s.io"
_PREFIX = "/apis/metrics.k8s.io/v1beta1"
_ALLOWED_NAMES = ("front-proxy-client",)  # kube-apiserver --requestheader-allowed-names
_WINDOW = "20.048s"  # the kubelet's CPU rate window metrics-server reports
_RESOURCES = [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
     "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
     "verbs": ["get", "list"]},
]  # fmt: skip


def chart_objects(
    namespace: str = "kube-system", name: str = "metrics-server"
) -> list[dict[str, Any]]:
    """The APIService and Service the metrics-server chart (3.x) creates with default values."""
    labels = {"app.kubernetes.io/name": "metrics-server", "app.kubernetes.io/instance": name}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "ports": [
                    {
                        "name": "https",
                        "port": 443,
                        "protocol": "TCP",
                        "targetPort": "https",
                        "appProtocol": "https",
                    }
                ],
                "selector": labels,
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE, "labels": labels},
            "spec": {
                "group": "metrics.k8s.io",
                "groupPriorityMinimum": 100,
                "insecureSkipTLSVerify": True,
                "service": {"name": name, "namespace": namespace, "port": 443},
                "version": "v1beta1",
                "versionPriority": 100,
            },
        },
    ]


def _seed(*parts: str) -> float:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_usage(namespace: str, pod: str, container: str, now: float) -> tuple[int, int]:
    """(nanocores, bytes): 1-40 millicores and 12-140 MiB, drifting a little over minutes."""
    base = _seed(namespace, pod, container)
    drift = 1 + 0.1 * math.sin(now / 97 + base * 6.28)
    cpu = int((1 + 39 * base) * 1e6 * drift)
    memory = int((12 + 128 * _seed(container, pod, namespace)) * 2**20 * drift)
    return cpu, memory


class MetricsServer:
    def __init__(
        self,
        api: KubeClient,
        requestheader_ca_pem: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.api, self.host, self.port = api, host, port
        self._ca_pem, self._clock = requestheader_ca_pem, clock
        self.nodes = Informer(api, "/api/v1/nodes", lambda _k: None, clock=self._clock_())
        self.pods = Informer(api, "/api/v1/pods", lambda _k: None, clock=self._clock_())
        self._http: HTTPServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._serving = asyncio.Event()
        self._stopped = asyncio.Event()

    def _clock_(self) -> Clock:
        return self._clock or ScaledClock(1.0)

    # --- life ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until ``stop()``."""
        context = await asyncio.to_thread(self._tls)
        self._http = await HTTPServer(self.handle, ssl_context=context).start(self.host, self.port)
        self.port = int(self._http.url.rsplit(":", 1)[1])
        self._tasks = [asyncio.create_task(self.nodes.run()), asyncio.create_task(self.pods.run())]
        self._serving.set()
        try:
            await self._stopped.wait()
        finally:
            await self._close()

    async def started(self) -> None:
        await self._serving.wait()
        await asyncio.gather(self.nodes.synced.wait(), self.pods.synced.wait())

    async def stop(self) -> None:
        self._stopped.set()
        await self._close()

    async def _close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def register(self, namespace: str = "kube-system", name: str = "metrics-server") -> None:
        """Apply the chart's Service and APIService (server-side, field manager ``helm``)."""
        for obj in chart_objects(namespace, name):
            if obj["kind"] == "Service":
                path = f"/api/v1/namespaces/{namespace}/services/{name}"
            else:
                path = f"/apis/apiregistration.k8s.io/v1/apiservices/{API_SERVICE}"
            await self.api.patch(path, obj, kind="apply", field_manager="helm", force=True)

    def _tls(self) -> ssl.SSLContext:
        # metrics-server's own self-signed serving certificate (the chart's tls.type default),
        # and client certificates checked against the requestheader CA.
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        ca = create_ca(algorithm=KeyAlgorithm.ECDSA_P256, now=now, organization="metrics-server")
        cert = issue_certificate(
            ca, now=now, validity=dt.timedelta(days=365), common_name="metrics-server",
            dns_names=["metrics-server.kube-system.svc"], ip_addresses=[self.host],
            server_auth=True,
        )  # fmt: skip
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "tls.crt").write_bytes(cert.cert_pem)
            Path(folder, "tls.key").write_bytes(cert.key_pem)
            Path(folder, "ca.crt").write_bytes(self._ca_pem)
            context.load_cert_chain(Path(folder, "tls.crt"), Path(folder, "tls.key"))
            context.load_verify_locations(Path(folder, "ca.crt"))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    # --- requests ------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        user = _requestheader_user(request)
        if user is None:
            return _status(401, "Unauthorized", "Unauthorized")
        path = request.path.rstrip("/")
        if path in ("/apis", "/apis/metrics.k8s.io"):
            return _status(404, "NotFound", "the server could not find the requested resource")
        if path == _PREFIX:
            return Response.json(
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": GROUP_VERSION,
                    "resources": _RESOURCES,
                }
            )
        parts = path.removeprefix(_PREFIX + "/").split("/") if path.startswith(_PREFIX) else []
        namespace = ""
        if len(parts) >= 3 and parts[0] == "namespaces":
            namespace, parts = parts[1], parts[2:]
        if not parts or parts[0] not in ("nodes", "pods") or len(parts) > 2:
            return _status(404, "NotFound", "the server could not find the requested resource")
        resource, name = parts[0], parts[1] if len(parts) == 2 else ""
        if resource == "nodes" and namespace:
            return _status(404, "NotFound", "the server could not find the requested resource")
        verb = "get" if name else "list"
        allowed = await self._authorized(user, verb, resource, namespace, name)
        if allowed is not None:
            return allowed
        try:
            selector = parse_selector(request.param("labelSelector") or "")
        except LabelError as exc:
            return _status(400, "BadRequest", f"unable to parse requirement: {exc}")
        items = self._node_items() if resource == "nodes" else self._pod_items(namespace)
        kind = "NodeMetrics" if resource == "nodes" else "PodMetrics"
        if name:
            for item in items:
                if item["metadata"]["name"] == name:
                    return Response.json({"kind": kind, "apiVersion": GROUP_VERSION, **item})
            what = f"{resource}.metrics.k8s.io"
            return _status(404, "NotFound", f'{what} "{name}" not found', name, resource)
        chosen = [i for i in items if selector.matches(i["metadata"].get("labels") or {})]
        return Response.json(
            {"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": chosen}
        )

    async def _authorized(
        self, user: tuple[str, list[str]], verb: str, resource: str, namespace: str, name: str
    ) -> Response | None:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user[0],
                "groups": user[1],
                "resourceAttributes": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "resource": resource,
                    "verb": verb,
                    "namespace": namespace,
                    "name": name,
                },
            },
        }
        try:
            answer = await self.api.create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
            )
        except (ApiError, OSError) as exc:
            return _status(500, "InternalError", f"authorization failed: {exc}")
        if (answer.get("status") or {}).get("allowed"):
            return None
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        return _status(
            403, "Forbidden",
            f'{resource}.metrics.k8s.io{" " + repr(name) if name else ""} is forbidden: User '
            f'"{user[0]}" cannot {verb} resource "{resource}" in API group "metrics.k8s.io"{where}',
        )  # fmt: skip

    # --- usage ---------------------------------------------------------------------------

    def _running_pods(self) -> list[dict[str, Any]]:
        return [
            p for p in self.pods.items.values()
            if (p.get("status") or {}).get("phase") == "Running" and p["spec"].get("nodeName")
        ]  # fmt: skip

    def _pod_items(self, namespace: str) -> list[dict[str, Any]]:
        now = time.time()
        items = []
        for pod in sorted(self._running_pods(), key=key_of):
            meta = pod["metadata"]
            if namespace and meta.get("namespace") != namespace:
                continue
            containers = []
            for container in pod["spec"].get("containers") or []:
                cpu, memory = container_usage(
                    meta["namespace"], meta["name"], container["name"], now
                )
                containers.append(
                    {
                        "name": container["name"],
                        "usage": {"cpu": f"{cpu}n", "memory": f"{memory // 1024}Ki"},
                    }
                )
            items.append(
                {
                    "metadata": {
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "creationTimestamp": _stamp(now),
                        "labels": meta.get("labels") or {},
                    },
                    "timestamp": _stamp(now - 10),
                    "window": _WINDOW,
                    "containers": containers,
                }
            )
        return items

    def _node_items(self) -> list[dict[str, Any]]:
        now = time.time()
        per_node: dict[str, tuple[int, int]] = {}
        for pod in self._running_pods():
            meta, node = pod["metadata"], pod["spec"]["nodeName"]
            for container in pod["spec"].get("containers") or []:
                cpu, memory = container_usage(
                    meta["namespace"], meta["name"], container["name"], now
                )
                have = per_node.get(node, (0, 0))
                per_node[node] = (have[0] + cpu, have[1] + memory)
        items = []
        for name, node in sorted(self.nodes.items.items()):
            conditions = (node.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                continue  # metrics-server reports only nodes whose kubelet it could scrape
            pods_cpu, pods_memory = per_node.get(name, (0, 0))
            # The system share: kubelet, containerd and Talos' services.
            cpu = pods_cpu + int((60 + 40 * _seed(name)) * 1e6)
            memory = pods_memory + int((700 + 300 * _seed(name, "memory")) * 2**20)
            items.append(
                {
                    "metadata": {
                        "name": name,
                        "creationTimestamp": _stamp(now),
                        "labels": (node.get("metadata") or {}).get("labels") or {},
                    },
                    "timestamp": _stamp(now - 10),
                    "window": _WINDOW,
                    "usage": {"cpu": f"{cpu}n", "memory": f"{memory // 1024}Ki"},
                }
            )
        return items


def _requestheader_user(request: Request) -> tuple[str, list[str]] | None:
    """The user kube-apiserver vouches for, if the client certificate is its front proxy's."""
    if request.peer_cert_der is None:
        return None
    cert = x509.load_der_x509_certificate(request.peer_cert_der)
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not any(n in _ALLOWED_NAMES for n in names):
        return None
    user = request.headers.get_header("x-remote-user")
    if not user:
        return None
    groups = [
        g.strip() for g in request.headers.get_header("x-remote-group").split(",") if g.strip()
    ]
    return user, groups


def _status(code: int, reason: str, message: str, name: str = "", kind: str = "") -> Response:
    body: dict[str, Any] = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    }  # fmt: skip
    if name:
        body["details"] = {"name": name, "group": "metrics.k8s.io", "kind": kind}
    return Response.json(body, status=code)
