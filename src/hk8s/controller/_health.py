"""The health gate, like ``talosctl health`` (talos ``pkg/cluster/check/default.go``).

Checks, each with a name, a verdict and what was seen:

- ``etcd members``: the etcd member list equals the control planes (by hostname);
- ``control plane services``: apid, etcd, kubelet and trustd run (and are healthy where
  Talos knows) on every control plane; apid and kubelet on every worker;
- ``kubernetes api``: the API answers through the cluster endpoint;
- ``nodes ready``: every expected node is registered and Ready, and no other node is; a
  node whose ``node.kubernetes.io/not-ready`` or ``unreachable`` taint the node lifecycle
  controller has not lifted yet is not Ready either (its condition turned True, but the
  scheduler still keeps pods off it: ``kubectl describe node`` shows the taint);
- ``nodes schedulable``: none is cordoned;
- ``control plane pods``: kube-apiserver, kube-controller-manager and kube-scheduler run on
  every control plane (their static pods' mirror pods).

``create`` waits until all pass; ``hk8s health`` runs them once; ``hk8s plan`` runs them once
and reads each failing check's ``problems`` (node, kind, what) to say what ``create`` would do
about each node (``_plan_probe``). A server Hetzner does not report running is not dialled: it
is a problem of its own (``server-down``), not a Talos timeout.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from hk8s.errors import Hk8sError, UnavailableError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Sequence

    from hk8s.controller._nodes import Node
    from hk8s.controller._waits import Waiter
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = [
    "CONTROL_PLANE_PODS",
    "HealthCheck",
    "HealthLimits",
    "NodeProblem",
    "ProblemKind",
    "check_health",
    "wait_healthy",
]

_T = TypeVar("_T")

CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
_CP_SERVICES = ("apid", "etcd", "kubelet", "trustd")
_WORKER_SERVICES = ("apid", "kubelet")


@dataclass(frozen=True)
class HealthLimits:
    """How hard the checks press on the nodes: at most ``concurrency`` Talos calls in flight
    (all 100 nodes at once timed out under load), and each node's answer within ``budget``
    wall seconds (a request timeout, like the transports'), so one hung node costs its
    budget and cannot hold up the whole check. None: the client's own timeouts only."""

    concurrency: int = 16
    budget: float | None = None

    async def within(self, call: Awaitable[_T], node: str) -> _T:
        if self.budget is None:
            return await call
        try:
            async with asyncio.timeout(self.budget):
                return await call
        except TimeoutError:
            raise UnavailableError(f"no answer within {self.budget:g}s", node=node) from None


ProblemKind = Literal[
    "server-down",  # Hetzner does not report the server running: not dialled
    "talos-unreachable",  # its Talos API did not answer over mTLS
    "service",  # a Talos service is missing or not running/healthy
    "etcd-missing",  # a control plane that is not an etcd member
    "etcd-learner",  # a member not promoted yet
    "etcd-unexpected",  # a member that is no control plane of the config
    "not-registered",  # no Kubernetes Node object
    "not-ready",  # Node not Ready
    "unexpected-node",  # a Node that is not in the config
    "cordoned",
    "control-plane-pod",  # a static pod's mirror pod not Running
]


@dataclass(frozen=True)
class NodeProblem:
    """One thing a check found wrong with one node: what ``plan`` turns into a step."""

    node: str
    kind: ProblemKind
    what: str


# A check's verdict, what it saw, and each node's problems.
_Verdict = tuple[bool, str, list[NodeProblem]]


@dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    detail: str
    problems: tuple[NodeProblem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"check": self.name, "ok": self.ok, "detail": self.detail}
        if self.problems:
            data["nodes"] = sorted({p.node for p in self.problems})
        return data


async def _etcd(
    talos: TalosNodeAPI, cps: Sequence[Node], limits: HealthLimits, ignore: Collection[str]
) -> _Verdict:
    wanted = sorted(n.name for n in cps)
    last = "no control plane answers"
    for node in cps:
        if node.server.status != "running":
            continue
        try:
            members = await limits.within(talos.etcd_members(node.address), node.name)
        except Hk8sError as exc:
            last = str(exc)
            continue
        names = sorted(m.hostname for m in members if m.hostname not in ignore)
        learners = sorted(m.hostname for m in members if m.is_learner and m.hostname in names)
        ok = names == wanted and not learners
        detail = f"{len(names)} member(s): {', '.join(names)}"
        if learners:
            detail += f"; learners: {', '.join(learners)}"
        if names != wanted:
            detail += f"; expected {', '.join(wanted)}"
        problems = [NodeProblem(n, "etcd-missing", "not an etcd member")
                    for n in wanted if n not in names]  # fmt: skip
        problems += [NodeProblem(n, "etcd-learner", "etcd learner, not yet promoted")
                     for n in learners]  # fmt: skip
        problems += [NodeProblem(n, "etcd-unexpected", "etcd member not in the config")
                     for n in names if n not in wanted]  # fmt: skip
        return ok, detail, problems
    return False, last, []


async def _services(talos: TalosNodeAPI, nodes: Sequence[Node], limits: HealthLimits) -> _Verdict:
    slots = asyncio.Semaphore(limits.concurrency)

    async def one(node: Node) -> list[NodeProblem]:
        if node.server.status != "running":
            return [NodeProblem(node.name, "server-down", f"server is {node.server.status}")]
        wanted = _CP_SERVICES if node.desired.control_plane else _WORKER_SERVICES
        try:
            async with slots:
                listed = await limits.within(talos.services(node.address), node.name)
            services = {s.id: s for s in listed}
        except Hk8sError as exc:
            return [NodeProblem(node.name, "talos-unreachable", exc.message)]
        bad = []
        for name in wanted:
            service = services.get(name)
            if service is None:
                bad.append(NodeProblem(node.name, "service", f"{name} missing"))
            elif service.state != "Running" or service.healthy is False:
                bad.append(NodeProblem(node.name, "service", f"{name} {service.state}"))
        return bad

    problems = [p for found in await asyncio.gather(*(one(n) for n in nodes)) for p in found]
    detail = "; ".join(
        f"{p.node}/{p.what}" if p.kind == "service" else f"{p.node}: {p.what}" for p in problems
    )
    return not problems, detail or f"{len(nodes)} node(s) running", problems


async def _kube_nodes(
    kube: KubernetesAPI, nodes: Sequence[Node], ignore: Collection[str]
) -> tuple[_Verdict, _Verdict]:
    found = {n.name: n for n in await kube.list_nodes() if n.name not in ignore}
    wanted = {n.name for n in nodes}
    missing = sorted(wanted - set(found))
    extra = sorted(set(found) - wanted)
    not_ready = sorted(n for n in wanted & set(found) if not found[n].in_service)
    problems = []
    if missing:
        problems.append(f"not registered: {', '.join(missing)}")
    if not_ready:
        problems.append(f"not Ready: {', '.join(not_ready)}")
    if extra:
        problems.append(f"unexpected: {', '.join(extra)}")
    nodes_wrong = [NodeProblem(n, "not-registered", "not a Kubernetes node") for n in missing]
    nodes_wrong += [NodeProblem(n, "not-ready", "Kubernetes node not Ready") for n in not_ready]
    nodes_wrong += [NodeProblem(n, "unexpected-node", "Kubernetes node not in the config")
                    for n in extra]  # fmt: skip
    ready = (not problems, "; ".join(problems) or f"{len(wanted)} node(s) Ready", nodes_wrong)
    cordoned = sorted(n for n, node in found.items() if not node.schedulable)
    schedulable = (
        not cordoned,
        f"cordoned: {', '.join(cordoned)}" if cordoned else "no node is cordoned",
        [NodeProblem(n, "cordoned", "cordoned") for n in cordoned],
    )
    return ready, schedulable


async def _pods(kube: KubernetesAPI, cps: Sequence[Node]) -> _Verdict:
    pods = {p["metadata"]["name"]: p for p in await kube.list("v1", "Pod", namespace="kube-system")}
    problems, seen = [], []
    for node in cps:
        for component in CONTROL_PLANE_PODS:
            pod = pods.get(f"{component}-{node.name}")
            phase = (pod or {}).get("status", {}).get("phase") or "missing"
            if phase != "Running":
                problems.append(NodeProblem(node.name, "control-plane-pod", f"{component} {phase}"))
                seen.append(f"{component}-{node.name} {phase}")
    return not problems, "; ".join(seen) or f"{len(cps) * 3} pod(s) running", problems


async def _guard(call: Callable[[], Awaitable[_Verdict]]) -> _Verdict:
    try:
        return await call()
    except Hk8sError as exc:
        return False, exc.message, []


def _check(name: str, verdict: _Verdict) -> HealthCheck:
    ok, detail, problems = verdict
    return HealthCheck(name, ok, detail, tuple(problems))


async def check_health(
    talos: TalosNodeAPI,
    kube: KubernetesAPI,
    nodes: Sequence[Node],
    limits: HealthLimits | None = None,
    *,
    ignore: Collection[str] = (),
) -> list[HealthCheck]:
    """Run every check once against the expected ``nodes``; ``ignore``: nodes left out (stuck,
    named elsewhere) that may still be etcd members or Kubernetes nodes from before."""
    limits = limits or HealthLimits()
    cps = [n for n in nodes if n.desired.control_plane]
    results: list[HealthCheck] = []
    results.append(_check("etcd members", await _guard(lambda: _etcd(talos, cps, limits, ignore))))
    results.append(
        _check("control plane services", await _guard(lambda: _services(talos, nodes, limits)))
    )

    async def api() -> _Verdict:
        await kube.get("v1", "Namespace", "kube-system")
        return True, "answers through the cluster endpoint", []

    api_ok = await _guard(api)
    results.append(_check("kubernetes api", api_ok))
    if not api_ok[0]:
        for name in ("nodes ready", "nodes schedulable", "control plane pods"):
            results.append(HealthCheck(name, False, "the Kubernetes API does not answer"))
        return results
    try:
        ready, schedulable = await _kube_nodes(kube, nodes, ignore)
    except Hk8sError as exc:
        ready = schedulable = (False, exc.message, [])
    results.append(_check("nodes ready", ready))
    results.append(_check("nodes schedulable", schedulable))
    results.append(_check("control plane pods", await _guard(lambda: _pods(kube, cps))))
    return results


async def wait_healthy(
    talos: TalosNodeAPI,
    kube: KubernetesAPI,
    waiter: Waiter,
    nodes: Sequence[Node],
    *,
    ignore: Collection[str] = (),
) -> list[HealthCheck]:
    """Wait until every check passes; returns the passing checks. ``ignore``: as for
    ``check_health`` (create's stuck nodes, named at its end)."""
    final: list[HealthCheck] = []
    # One request's time per node, with the transports' floor (model.timing: never below 2 s).
    limits = HealthLimits(budget=max(2.0, waiter.timing.request_timeout))

    async def check() -> tuple[bool, str]:
        nonlocal final
        final = await check_health(talos, kube, nodes, limits, ignore=ignore)
        failing = [f"{c.name}: {c.detail}" for c in final if not c.ok]
        return not failing, "; ".join(failing)

    await waiter.until("health", "cluster health checks", check)
    return final
