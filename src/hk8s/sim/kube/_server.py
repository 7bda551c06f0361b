"""HTTP routing of the simulated API server: discovery, resource verbs, watches, logs.

Paths follow the API conventions (``/api/v1/namespaces/<ns>/<resource>/<name>/<subresource>``,
``/apis/<group>/<version>/...``). Authentication is by client certificate: the TLS context
verifies a presented certificate against the cluster's Kubernetes CA, and a request without
one is anonymous: it may read the health and version endpoints (``system:public-info-viewer``),
anything else answers ``401 Unauthorized`` as kube-apiserver does with anonymous auth off for
resources.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from hk8s.sim._http import Request, Response
from hk8s.sim.kube import _resources as res
from hk8s.sim.kube._selectors import parse_field_selector, parse_label_selector
from hk8s.sim.kube._status import KubeError
from hk8s.sim.kube._verbs import Verbs

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from hk8s.sim.kube._cluster import Cluster
    from hk8s.sim.kube._resources import ResourceType
    from hk8s.sim.kube._store import Event

__all__ = ["Router"]

Obj = dict[str, Any]
_log = logging.getLogger(__name__)
_PUBLIC = ("/healthz", "/livez", "/readyz", "/version")
# kube-apiserver's --min-request-timeout: watches without timeoutSeconds end after ~30 min.
_DEFAULT_WATCH_TIMEOUT = 1800.0


def _json(payload: Any, status: int = 200) -> Response:
    return Response.json(
        payload,
        status=status,
        headers={"Audit-Id": str(uuid.uuid4()), "Cache-Control": "no-cache, private"},
    )


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class Router:
    """Turns requests into ``Verbs`` calls; ``available`` False answers 503 everywhere."""

    def __init__(self, cluster: Cluster, version: dict[str, str]) -> None:
        self.cluster = cluster
        self.verbs = cluster.verbs
        self.version = version
        self.available = True
        self.server_address = ""

    async def handle(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except KubeError as exc:
            return _json(exc.status(), exc.code)
        except Exception as exc:  # a simulator bug still answers as kube-apiserver would
            _log.exception("simulated Kubernetes API failed on %s %s", request.method, request.path)
            error = KubeError(500, "InternalError", f"Internal error occurred: {exc!r}")
            return _json(error.status(), 500)

    async def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if not self.available:
            raise KubeError.unavailable("the Kubernetes API server is unavailable")
        if path.startswith(_PUBLIC):
            if path == "/version":
                return _json(self.version)
            return Response.text("ok")
        if request.peer_cert_der is None:
            raise KubeError.unauthorized()
        if path == "/api":
            return _json(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}
                    ],
                }
            )
        if path == "/apis":
            return _json(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group(g) for g in res.GROUPS],
                }
            )
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) == 2 and parts[1] in res.GROUPS:
            return _json({"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1])})
        elif parts[0] == "apis" and len(parts) >= 3 and parts[1] in res.GROUPS:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _no_route()
        if not rest:
            return self._resource_list(group, version)
        return await self._resource(request, group, version, rest)

    def _group(self, group: str) -> Obj:
        version = next(r.version for r in res.RESOURCES if r.group == group)
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        return {"name": group, "versions": [gv], "preferredVersion": gv}

    def _resource_list(self, group: str, version: str) -> Response:
        types = [r for r in res.RESOURCES if r.group == group and r.version == version]
        if not types:
            raise _no_route()
        group_version = f"{group}/{version}" if group else version
        return _json(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": [e for r in types for e in r.discovery()],
            }
        )

    async def _resource(
        self, request: Request, group: str, version: str, rest: list[str]
    ) -> Response:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            inner = res.lookup(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = res.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3 or (rt.namespaced and namespace is None and len(rest) > 1):
            raise _no_route()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub != "status" and not (rt.kind == "Pod" and sub in ("log", "eviction")):
            raise _no_route()
        if sub == "status" and not rt.has_status:
            raise _no_route()
        return await self._verb(request, rt, namespace, name, sub)

    async def _verb(
        self, request: Request, rt: ResourceType, ns: str | None, name: str | None, sub: str
    ) -> Response:
        method, verbs, nsv = request.method, self.verbs, ns or ""
        if method != "GET" and request.param("dryRun") == "All":
            # Every admission and validation step runs, nothing is persisted.
            verbs = Verbs(self.cluster.store.fork())
        manager = request.param("fieldManager") or _default_manager(request)
        if method == "GET" and name is None:
            if _truthy(request.param("watch")):
                return self._watch(request, rt, ns)
            return self._list(request, rt, ns)
        if method == "GET" and sub == "log":
            return await self._log(request, nsv, str(name))
        if method == "GET":
            return _json(verbs.get(rt, nsv, str(name)))
        body = _body(request) if method in ("POST", "PUT") else None
        if method == "POST" and sub == "eviction":
            if isinstance(body, dict) and (body.get("metadata") or {}).get("name", name) != name:
                raise KubeError.bad_request("name in URL does not match name in Eviction object")
            return _json(verbs.evict(nsv, str(name)), 201)
        if method == "POST" and name is None:
            return _json(verbs.create(rt, nsv, body, manager=manager), 201)
        if method == "PUT" and name is not None:
            return _json(verbs.replace(rt, nsv, name, body, manager=manager, subresource=sub))
        if method == "PATCH" and name is not None:
            force = request.param("force")
            obj = verbs.patch(
                rt,
                nsv,
                name,
                request.body,
                request.headers.get_header("content-type"),
                manager=request.param("fieldManager")
                or (
                    None if "apply-patch" in request.headers.get_header("content-type") else manager
                ),
                force=None if force is None else _truthy(force),
                subresource=sub,
            )
            return _json(obj)
        if method == "DELETE" and name is not None:
            options = _body(request) or {}
            policy = request.param("propagationPolicy") or options.get("propagationPolicy")
            if _truthy(request.param("orphanDependents")) or options.get("orphanDependents"):
                policy = "Orphan"
            result = verbs.delete(rt, nsv, name, policy)
            return _json(result, 202 if rt.kind == "Namespace" else 200)
        if method == "DELETE":
            items = verbs.list(
                rt, ns, request.param("labelSelector"), request.param("fieldSelector")
            )
            for item in items:
                verbs.delete(rt, item["metadata"].get("namespace", ""), item["metadata"]["name"])
            return _json(self._list_body(rt, items))
        raise KubeError.method_not_allowed(
            "the server does not allow this method on the requested resource"
        )

    def _list_body(self, rt: ResourceType, items: list[Obj], meta: Obj | None = None) -> Obj:
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        metadata = {"resourceVersion": str(self.cluster.store.rv), **(meta or {})}
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": items,
        }

    def _list(self, request: Request, rt: ResourceType, ns: str | None) -> Response:
        items = self.verbs.list(
            rt, ns, request.param("labelSelector"), request.param("fieldSelector")
        )
        limit = _number(request, "limit", 0)
        token = request.param("continue")
        start = 0
        if token:
            try:
                start = int(json.loads(base64.b64decode(token))["start"])
            except (ValueError, KeyError, TypeError) as exc:
                raise KubeError.bad_request("continue key is not valid") from exc
        meta: Obj = {}
        if limit and start + limit < len(items):
            next_token = json.dumps({"start": start + limit, "rv": self.cluster.store.rv})
            meta = {
                "continue": base64.b64encode(next_token.encode()).decode(),
                "remainingItemCount": len(items) - start - limit,
            }
            items = items[start : start + limit]
        else:
            items = items[start:]
        return _json(self._list_body(rt, items, meta))

    def _watch(self, request: Request, rt: ResourceType, ns: str | None) -> Response:
        labels = parse_label_selector(request.param("labelSelector"))
        fields = parse_field_selector(request.param("fieldSelector"), rt.kind)
        timeout = float(_number(request, "timeoutSeconds", int(_DEFAULT_WATCH_TIMEOUT)))
        since = request.param("resourceVersion") or ""
        store, clock = self.cluster.store, self.cluster.clock

        def matches(obj: Obj) -> bool:
            meta = obj["metadata"]
            return (
                (ns is None or meta.get("namespace") == ns)
                and labels(meta.get("labels") or {})
                and fields(obj)
            )

        def line(kind: str, obj: Obj) -> bytes:
            return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"

        async def stream() -> AsyncIterator[bytes]:
            queue = store.subscribe()
            seen: set[tuple[str, str]] = set()
            excluded: set[tuple[str, str]] = set()
            timer = asyncio.ensure_future(clock.sleep(timeout))
            getter: asyncio.Future[Any] | None = None
            try:
                if since in ("", "0"):
                    last = store.rv
                    for obj in self.verbs.list(rt, ns):
                        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                        if matches(obj):
                            seen.add(key)
                            yield line("ADDED", obj)
                        else:
                            excluded.add(key)
                else:
                    last = int(since) if since.isdigit() else 0
                    if last < store.oldest_rv - 1:
                        gone = KubeError(
                            410,
                            "Expired",
                            f"too old resource version: {since} ({store.oldest_rv - 1})",
                        )
                        yield line("ERROR", gone.status())
                        return
                    for event in list(store.history):
                        if event.rv > last and event.key == rt.key:
                            out = _translate(event, matches, seen, excluded)
                            if out:
                                yield line(*out)
                    last = store.rv
                while not timer.done():
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        break
                    event = getter.result()
                    if event.rv <= last or event.key != rt.key:
                        continue
                    out = _translate(event, matches, seen, excluded)
                    if out:
                        yield line(*out)
            finally:
                # Also when the client goes away mid-wait: neither helper may outlive the watch.
                timer.cancel()
                if getter is not None:
                    getter.cancel()
                store.unsubscribe(queue)

        return Response(
            status=200,
            headers={"Content-Type": "application/json", "Audit-Id": str(uuid.uuid4())},
            stream=stream(),
        )

    async def _log(self, request: Request, ns: str, name: str) -> Response:
        pod = self.verbs.get(res.by_kind("v1", "Pod"), ns, name)
        containers = [c["name"] for c in pod["spec"].get("containers") or []]
        container = request.param("container")
        if container is None:
            if len(containers) != 1:
                raise KubeError.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}]"
                )
            container = containers[0]
        if container not in containers:
            raise KubeError.bad_request(f"container {container} is not valid for pod {name}")
        logs = self.cluster.logs.get(pod["metadata"]["uid"], {})
        if container not in logs:
            statuses = {
                s["name"]: s for s in (pod.get("status") or {}).get("containerStatuses") or []
            }
            waiting = ((statuses.get(container) or {}).get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "ContainerCreating")
            raise KubeError.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        text = logs[container]
        tail = request.param("tailLines")
        if tail is not None and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail) :] if int(tail) else [])
        if _truthy(request.param("follow")):
            return Response(
                status=200,
                headers={"Content-Type": "text/plain"},
                stream=self._follow(ns, name, container, text),
            )
        return Response.text(text)

    async def _follow(self, ns: str, name: str, container: str, text: str) -> AsyncIterator[bytes]:
        sent = text
        yield text.encode()
        pods = res.by_kind("v1", "Pod")
        while True:
            pod = self.cluster.store.get(pods, ns, name)
            if pod is None:
                return
            current = self.cluster.logs.get(pod["metadata"]["uid"], {}).get(container, "")
            if current.startswith(sent) and len(current) > len(sent):
                yield current[len(sent) :].encode()
                sent = current
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            await self.cluster.clock.sleep(self.cluster.timings.tick)


def _translate(
    event: Event, matches: Any, seen: set[tuple[str, str]], excluded: set[tuple[str, str]]
) -> tuple[str, Obj] | None:
    """An event as this watch sees it: an object entering the selection is ADDED for it, one
    leaving it DELETED (the apiserver's watch cache filters the same way)."""
    meta = event.obj["metadata"]
    key = (meta.get("namespace", ""), meta["name"])
    if event.type == "DELETED":
        excluded.discard(key)
        if key in seen or matches(event.obj):
            seen.discard(key)
            return "DELETED", event.obj
        return None
    if matches(event.obj):
        kind = "ADDED" if event.type == "ADDED" or key in excluded else "MODIFIED"
        excluded.discard(key)
        seen.add(key)
        return kind, event.obj
    excluded.add(key)
    if key in seen:
        seen.discard(key)
        return "DELETED", event.obj
    return None


def _number(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if not raw:
        return default
    if not raw.isdigit():
        raise KubeError.bad_request(f'invalid value "{raw}" for {name}: not a non-negative integer')
    return int(raw)


def _body(request: Request) -> Any:
    if not request.body:
        return None
    try:
        return json.loads(request.body)
    except ValueError:
        import yaml

        with contextlib.suppress(yaml.YAMLError):
            return yaml.safe_load(request.body)
        raise KubeError.bad_request("the request body is not valid JSON or YAML") from None


def _default_manager(request: Request) -> str:
    # apiserver: the field manager defaults to the user agent up to its first "/".
    agent = request.headers.get_header("user-agent") or "unknown"
    return agent.split("/", 1)[0] or "unknown"


def _no_route() -> KubeError:
    return KubeError(404, "NotFound", "the server could not find the requested resource", {})
