"""``KubeClient``: the Kubernetes port used by create, upgrade, scaling and destroy.

Waits are named conditions checked until ``cluster_timeout`` (or the ``timeout`` given); a
condition not met raises ``WaitTimeoutError`` with what was last seen. The waits on a
collection (nodes Ready, evicted pods gone, rollouts, Jobs) list it once and judge it again at
each change a watch sends, as ``kubectl wait`` does; the others (and these, when no watch can
be had) poll through the ``Clock`` every ``cluster_poll_interval``.

Node removal follows ``kubectl drain``: cordon, then evict every pod but DaemonSet-managed and
mirror (static) pods through the Eviction API, which enforces PodDisruptionBudgets by
answering 429 (kubernetes.io/docs/concepts/scheduling-eviction/api-eviction); a blocked
eviction is retried until the deadline, then reported with the pod and the budget that
blocked it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

from hk8s.errors import Hk8sError, NotFoundError, RateLimitedError, WaitTimeoutError
from hk8s.providers.k8s._client import MERGE_PATCH, KubeBase, NoWatchError, ThrottledError
from hk8s.providers.k8s._types import JobFailedError, KubeNode, ObjectRef

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

__all__ = ["KubeClient"]

# The longest one watch of a wait runs before it is opened again, in poll intervals (30 s in
# real time).
WATCH_SPAN = 30
_PDB_IN_MESSAGE = re.compile(r"disruption budget (\S+?)(?: |$)")
LOG_TAIL_LINES = 40


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _rollout_state(kind: str, obj: dict[str, Any]) -> tuple[bool, str]:
    """Like ``kubectl rollout status``: ready, and why not."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "the controller has not observed the latest spec yet"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        updated = status.get("updatedNumberScheduled", 0)
        available = status.get("numberAvailable", status.get("numberReady", 0))
        done = updated >= desired and available >= desired
        return done, f"{available}/{desired} pods available, {updated} updated"
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    old = status.get("replicas", 0) - updated
    done = updated >= want and available >= want and old <= 0
    seen = f"{available}/{want} replicas available, {updated} updated"
    return done, seen + (f", {old} old replicas terminating" if old > 0 else "")


class KubeClient(KubeBase):
    """The Kubernetes API of one cluster, built with ``KubeClient.from_kubeconfig``.

    >>> kube = KubeClient.from_kubeconfig("kubeconfig", clock=clock, timing=timing)
    >>> # await kube.wait_api_ready(); await kube.apply(objects); await kube.drain("demo-w-3")
    """

    # -- waits ------------------------------------------------------------------------------

    async def wait_for(
        self,
        condition: str,
        check: Callable[[], Awaitable[tuple[bool, str]]],
        *,
        timeout: float | None = None,
    ) -> None:
        """Poll ``check`` (-> done, what is seen) until done; retryable errors keep waiting."""
        limit = self._timing.cluster_timeout if timeout is None else timeout
        deadline = self._clock.now() + limit
        seen = ""
        while True:
            try:
                done, seen = await check()
            except Hk8sError as exc:
                if not exc.retryable and not isinstance(exc, NotFoundError):
                    raise
                done, seen = False, str(exc)
            if done:
                return
            remaining = deadline - self._clock.now()
            if remaining <= 0:
                raise WaitTimeoutError(condition, limit, last_error=seen or None)
            await self._clock.sleep(min(self._timing.cluster_poll_interval, remaining))

    async def wait_listed(
        self,
        condition: str,
        path: str,
        judge: Callable[[list[dict[str, Any]]], Awaitable[tuple[bool, str]]],
        *,
        query: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """Until ``judge(items)`` (-> done, what is seen) of the collection at ``path`` says
        done; returns those items. As ``kubectl wait`` does: list once, then keep the items
        up to date from a watch and judge them again at each event, so a change is seen when
        the API server sends it, with one connection per ``WATCH_SPAN`` poll intervals rather
        than a request per look. It lists again when the watch says its version is gone (410)
        and polls when no watch can be had; retryable errors keep waiting."""
        query = list(query)
        poll = self._timing.cluster_poll_interval
        limit = self._timing.cluster_timeout if timeout is None else timeout
        deadline = self._clock.now() + limit
        items: dict[str, dict[str, Any]] = {}
        version, seen = "", ""

        def key(obj: dict[str, Any]) -> str:
            meta = obj.get("metadata") or {}
            return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

        while True:
            try:
                if not version:
                    body = (await self.request("GET", path, query=query)).json() or {}
                    version = str((body.get("metadata") or {}).get("resourceVersion") or "")
                    items = {key(o): o for o in body.get("items") or []}
                    done, seen = await judge(list(items.values()))
                    if done:
                        return list(items.values())
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    raise WaitTimeoutError(condition, limit, last_error=seen or None)
                span = min(remaining, WATCH_SPAN * poll)
                events = self.watch(path, version, span, query=query)
                async with contextlib.aclosing(events):  # the connection goes with the wait
                    async for kind, obj in events:
                        if kind == "ERROR":  # 410 Gone (compacted) and the like: list again
                            version = ""
                            break
                        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                        if kind == "BOOKMARK":
                            continue
                        if kind == "DELETED":
                            items.pop(key(obj), None)
                        else:
                            items[key(obj)] = obj
                        done, seen = await judge(list(items.values()))
                        if done:
                            return list(items.values())
                        if self._clock.now() >= deadline:
                            raise WaitTimeoutError(condition, limit, last_error=seen or None)
                # The server ended the watch (its span): watch on from the last version, after
                # a moment, so a server that ends every watch at once cannot spin this loop.
                await self._clock.sleep(min(poll / 10, max(0.0, deadline - self._clock.now())))
            except NoWatchError:  # poll: list again after an interval
                version = ""
                await self._clock.sleep(min(poll, max(0.0, deadline - self._clock.now())))
            except WaitTimeoutError:
                raise
            except Hk8sError as exc:
                if not exc.retryable and not isinstance(exc, NotFoundError):
                    raise
                seen, version = str(exc), ""
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    raise WaitTimeoutError(condition, limit, last_error=seen or None) from exc
                await self._clock.sleep(min(poll, remaining))

    async def wait_api_ready(self, *, timeout: float | None = None) -> None:
        """The API server answers and reports itself ready (``/readyz``)."""

        async def check() -> tuple[bool, str]:
            response = await self.request("GET", "/readyz", retry=False)
            return True, response.text()

        await self.wait_for("the Kubernetes API to answer", check, timeout=timeout)

    async def wait_nodes_ready(
        self,
        names: Iterable[str],
        *,
        timeout: float | None = None,
        booted_since: Mapping[str, str | None] | None = None,
    ) -> list[KubeNode]:
        """Every named node is registered, Ready and free of the not-ready taints
        (``KubeNode.in_service``); returns them. ``booted_since``: node -> the ``bootID`` it
        reported before a reboot (None: unknown): such a node counts once the kubelet of a
        later boot posted its status. Until then its Ready condition may be the one posted
        before the reboot (a single control plane's API server goes down with it: nothing
        marks it NotReady)."""
        wanted = sorted(set(names))
        before = {name: boot for name, boot in (booted_since or {}).items() if boot}

        async def judge(items: list[dict[str, Any]]) -> tuple[bool, str]:
            nodes = {node.name: node for node in map(KubeNode.from_api, items)}
            found = [nodes[n] for n in wanted if n in nodes]
            missing = [n for n in wanted if n not in nodes]
            stale = [n.name for n in found if n.name in before and n.boot_id == before[n.name]]
            not_ready = [n.name for n in found if not n.in_service and n.name not in stale]
            parts = []
            if missing:
                parts.append(f"not registered: {', '.join(missing)}")
            if stale:
                parts.append(f"kubelet not back since the reboot: {', '.join(stale)}")
            if not_ready:
                parts.append(f"not Ready: {', '.join(not_ready)}")
            return not parts, "; ".join(parts)

        # One node (an upgrade's, a reboot's): only its own changes wake the watch.
        one = [("fieldSelector", f"metadata.name={wanted[0]}")] if len(wanted) == 1 else []
        items = await self.wait_listed(
            f"nodes Ready ({', '.join(wanted)})",
            await self.path("v1", "Node"),
            judge,
            query=one,
            timeout=timeout,
        )
        nodes = {node.name: node for node in map(KubeNode.from_api, items)}
        return [nodes[n] for n in wanted]

    async def wait_rollout(
        self, kind: str, namespace: str, name: str, *, timeout: float | None = None
    ) -> None:
        """A Deployment or DaemonSet has all its pods updated and ready."""

        async def judge(items: list[dict[str, Any]]) -> tuple[bool, str]:
            if not items:
                return False, "it does not exist yet"
            return _rollout_state(kind, items[0])

        await self.wait_listed(
            f"{kind} {namespace}/{name} rolled out",
            await self.path("apps/v1", kind, namespace=namespace),
            judge,
            query=[("fieldSelector", f"metadata.name={name}")],
            timeout=timeout,
        )

    async def wait_served(
        self, api_version: str, kind: str, *, timeout: float | None = None
    ) -> None:
        """The API server serves ``kind`` in ``api_version`` (a CRD someone else registers
        is established and in discovery)."""

        async def check() -> tuple[bool, str]:
            await self.path(api_version, kind)
            return True, "served"

        await self.wait_for(f"the API server to serve {kind} ({api_version})", check,
                            timeout=timeout)  # fmt: skip

    async def wait_job(self, namespace: str, name: str, *, timeout: float | None = None) -> None:
        """The Job completed; a failed Job raises ``JobFailedError`` with its pods' logs."""

        async def judge(jobs: list[dict[str, Any]]) -> tuple[bool, str]:
            if not jobs:
                return False, "the Job does not exist"
            status = jobs[0].get("status") or {}
            conditions = {c.get("type"): c for c in status.get("conditions") or []}
            if status.get("succeeded", 0) >= 1 or _true(conditions.get("Complete")):
                return True, "complete"
            failed = conditions.get("Failed")
            if _true(failed):
                assert failed is not None
                reason = failed.get("message") or failed.get("reason") or "failed"
                raise JobFailedError(namespace, name, reason, await self.job_logs(namespace, name))
            progress = f"{status.get('active', 0)} active, {status.get('failed', 0)} failed"
            if status.get("failed", 0):
                # The Job controller retries failed pods after a backoff (10 s, doubling, up to
                # backoffLimit): say why the last one failed while it does, so a wait that
                # times out first still shows the cause.
                said = await self._last_failure(namespace, name)
                if said:
                    progress += f"; the last failed pod said: {said}"
            return False, progress

        await self.wait_listed(
            f"Job {namespace}/{name} to complete",
            await self.path("batch/v1", "Job", namespace=namespace),
            judge,
            query=[("fieldSelector", f"metadata.name={name}")],
            timeout=timeout,
        )

    async def _last_failure(self, namespace: str, name: str) -> str:
        """The last line the newest failed pod of a Job logged ("" if none or unreadable)."""
        pods = await self.list("v1", "Pod", namespace=namespace, label_selector=f"job-name={name}")
        failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        if not failed:
            return ""
        newest = max(failed, key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""))
        try:
            text = await self._log_tail(namespace, newest["metadata"]["name"], 5)
        except Hk8sError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    async def retry_failed_job(self, namespace: str, name: str) -> bool:
        """Delete the Job if it failed, so that applying it again runs it anew; True if so.

        A Job's pod template is immutable and a failed Job stays failed: without this, a
        transient failure (a chart download cut short) would fail every later run in a second.
        """
        job = await self.get("batch/v1", "Job", name, namespace=namespace)
        if job is None:
            return False
        conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []}
        if not _true(conditions.get("Failed")):
            return False
        path = await self.path("batch/v1", "Job", name, namespace)
        with contextlib.suppress(NotFoundError):
            # Background: the Job's pods (and their logs) go with it.
            await self.request("DELETE", path, query=[("propagationPolicy", "Background")])

        async def gone() -> tuple[bool, str]:
            found = await self.get("batch/v1", "Job", name, namespace=namespace)
            return found is None, "the failed Job is being deleted"

        await self.wait_for(f"failed Job {namespace}/{name} to be deleted", gone)
        return True

    async def job_logs(self, namespace: str, name: str) -> str:
        """The last lines of each of a Job's pods' logs, oldest pod first. Read side by side:
        a kubelet that does not answer costs one request timeout, not one per pod."""
        pods = await self.list("v1", "Pod", namespace=namespace, label_selector=f"job-name={name}")
        pods.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""))

        async def chunk(pod_name: str) -> str:
            try:
                text = await self._log_tail(namespace, pod_name, LOG_TAIL_LINES)
            except Hk8sError as exc:
                return f"[{pod_name}] (logs unavailable: {exc})"
            return f"[{pod_name}]\n{text.rstrip()}"

        chunks = await asyncio.gather(*(chunk(pod["metadata"]["name"]) for pod in pods))
        return "\n".join(chunks)

    async def _log_tail(self, namespace: str, pod: str, lines: int) -> str:
        """The last ``lines`` lines a pod logged, in one attempt: a log only explains a
        failure, so it must not hold up the report. The API server fetches it from the node's
        kubelet; an unreachable kubelet answers 5xx, which the usual retries would repeat for
        about 90 s before the Job's failure was even shown."""
        response = await self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            query=[("tailLines", str(lines))],
            retry=False,
        )
        return response.text()

    # -- nodes ------------------------------------------------------------------------------

    async def list_nodes(self, *, retry: bool = True) -> list[KubeNode]:
        """Every Node. ``retry=False``: one attempt, for callers that can do without the
        answer while the API is not up (``create`` before etcd is bootstrapped)."""
        path = await self.path("v1", "Node")
        response = await self.request("GET", path, retry=retry)
        items: list[dict[str, Any]] = (response.json() or {}).get("items") or []
        return [KubeNode.from_api(obj) for obj in items]

    async def cordon(self, node: str) -> None:
        """Mark the node unschedulable (``kubectl cordon``)."""
        await self.request(
            "PATCH",
            f"/api/v1/nodes/{node}",
            body={"spec": {"unschedulable": True}},
            content_type=MERGE_PATCH,
        )

    async def uncordon(self, node: str, *, annotation: str | None = None) -> None:
        """Make the node schedulable again (``kubectl uncordon``, which leaves
        ``spec.unschedulable`` unset: false). ``annotation``: also remove this annotation in
        the same patch, the mark a caller set when it cordoned the node (``hk8s upgrade``'s),
        so the node is never left schedulable but still marked, or the other way round.
        ``null`` deletes a key in a JSON merge patch (RFC 7386)."""
        body: dict[str, Any] = {"spec": {"unschedulable": None}}
        if annotation:
            body["metadata"] = {"annotations": {annotation: None}}
        await self.request("PATCH", f"/api/v1/nodes/{node}", body=body, content_type=MERGE_PATCH)

    async def delete_node(self, node: str) -> bool:
        """Delete the Node object; ``False`` if it was already gone."""
        return await self.delete("v1", "Node", node)

    async def drain(self, node: str, *, timeout: float | None = None) -> list[ObjectRef]:
        """Cordon, evict (honouring PodDisruptionBudgets), wait until the pods are gone."""
        await self.cordon(node)
        pods = await self._evictable_pods(node)
        pending = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        evicted: list[ObjectRef] = []

        async def evict_all() -> tuple[bool, str]:
            # All at once, as kubectl drain does: each is its own request and budget check.
            todo = list(pending.items())
            blockers = await asyncio.gather(*(self._evict(ns, name, pod)
                                              for (ns, name), pod in todo))  # fmt: skip
            blocked = []
            for ((namespace, name), _), blocker in zip(todo, blockers, strict=True):
                if blocker is None:
                    del pending[(namespace, name)]
                    evicted.append(ObjectRef("v1", "Pod", name, namespace))
                else:
                    blocked.append(f"pod {namespace}/{name} blocked by {blocker}")
            return not pending, "; ".join(blocked)

        await self.wait_for(f"draining node {node}", evict_all, timeout=timeout)
        uids = {p["metadata"].get("uid") for p in pods}

        async def pods_gone(items: list[dict[str, Any]]) -> tuple[bool, str]:
            left = [
                f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                for p in items
                if p["metadata"].get("uid") in uids
            ]
            return not left, f"still terminating: {', '.join(left)}"

        await self.wait_listed(
            f"evicted pods to leave node {node}",
            await self.path("v1", "Pod"),
            pods_gone,
            query=[("fieldSelector", f"spec.nodeName={node}")],
            timeout=timeout,
        )
        return evicted

    async def _pods_on(self, node: str) -> list[dict[str, Any]]:
        pods = await self.list("v1", "Pod", field_selector=f"spec.nodeName={node}")
        return [p for p in pods if (p.get("spec") or {}).get("nodeName") == node]

    async def _evictable_pods(self, node: str) -> list[dict[str, Any]]:
        def skipped(pod: dict[str, Any]) -> bool:
            meta = pod.get("metadata") or {}
            if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
                return True
            return any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or [])

        return [p for p in await self._pods_on(node) if not skipped(p)]

    async def _evict(self, namespace: str, name: str, pod: dict[str, Any]) -> str | None:
        """Evict one pod: ``None`` when evicted or gone, else what blocks it."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            await self.request(
                "POST",
                f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                body=body,
                retry=False,
            )
        except NotFoundError:
            return None
        except RateLimitedError as exc:
            return await self._blocking_budget(namespace, pod, exc)
        return None

    async def _blocking_budget(
        self, namespace: str, pod: dict[str, Any], exc: RateLimitedError
    ) -> str:
        body = exc.body if isinstance(exc, ThrottledError) else {}
        causes = (body.get("details") or {}).get("causes") or []
        message = " ".join(str(c.get("message", "")) for c in causes) or str(
            body.get("message", "")
        )
        match = _PDB_IN_MESSAGE.search(message)
        if match:
            return f"PodDisruptionBudget {namespace}/{match.group(1)} ({message})"
        labels = (pod.get("metadata") or {}).get("labels") or {}
        for pdb in await self.list("policy/v1", "PodDisruptionBudget", namespace=namespace):
            if _selector_matches((pdb.get("spec") or {}).get("selector") or {}, labels):
                return f"PodDisruptionBudget {namespace}/{pdb['metadata']['name']} ({message})"
        return message or "the eviction API (HTTP 429)"

    # -- destroy helpers --------------------------------------------------------------------

    async def list_load_balancer_services(self) -> list[ObjectRef]:
        """Services of type LoadBalancer: each owns a Hetzner load balancer via the CCM."""
        return [
            ObjectRef.of({**svc, "apiVersion": "v1", "kind": "Service"})
            for svc in await self.list("v1", "Service")
            if (svc.get("spec") or {}).get("type") == "LoadBalancer"
        ]

    async def delete_load_balancer_services(self) -> list[ObjectRef]:
        """Delete them so the CCM deletes their Hetzner load balancers; returns what it asked."""
        services = await self.list_load_balancer_services()
        for ref in services:
            await self.delete("v1", "Service", ref.name, namespace=ref.namespace)
        return services

    async def list_pvcs(self) -> list[ObjectRef]:
        return [
            ObjectRef.of({**pvc, "apiVersion": "v1", "kind": "PersistentVolumeClaim"})
            for pvc in await self.list("v1", "PersistentVolumeClaim")
        ]

    async def delete_pvcs(self) -> list[ObjectRef]:
        """Delete every claim so the CSI driver deletes the Hetzner volumes behind them."""
        claims = await self.list_pvcs()
        for ref in claims:
            await self.delete("v1", "PersistentVolumeClaim", ref.name, namespace=ref.namespace)
        return claims

    async def list_persistent_volumes(self) -> list[ObjectRef]:
        return [
            ObjectRef.of({**pv, "apiVersion": "v1", "kind": "PersistentVolume"})
            for pv in await self.list("v1", "PersistentVolume")
        ]


def _true(condition: dict[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


if TYPE_CHECKING:
    from hk8s.providers.k8s._port import KubernetesAPI

    _implements: type[KubernetesAPI] = KubeClient  # mypy checks the port is satisfied
