"""What ``hk8s plan`` adds to the resource plan: the cluster's own health, probed read-only.

A cluster whose servers and infrastructure match cluster.yaml is not "nothing to do" while a
node sits in maintenance mode, its Talos API does not answer, etcd lacks a member or a node is
not Ready: ``create`` would act on it (apply a config, wait for it) and ``hk8s health`` fails.
``probe_cluster`` runs the checks ``create`` gates on (``check_health``, once, each node's
answer bounded in time, the whole probe bounded too) and turns each node's most basic problem
into a ``Finding``: the node, what is wrong, and what ``create`` will do about it. A node whose
Talos API does not answer over mTLS is asked whether it is in maintenance mode, with the test
``create`` itself uses (``probe_configured``). A probe that reaches nothing says so: it never
passes for health.

>>> str(Finding("demo-workers-1", "in maintenance mode", "create applies its machine config"))
'demo-workers-1: in maintenance mode — create applies its machine config'
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_args

from hk8s.controller._health import HealthLimits, ProblemKind, check_health
from hk8s.controller._nodes import probe_configured
from hk8s.errors import Hk8sError

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from hk8s.controller._health import HealthCheck, NodeProblem
    from hk8s.controller._nodes import Node
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import TalosNodeAPI

__all__ = ["ClusterProbe", "Finding", "probe_cluster"]

_WAITS = "create waits for it"
_FAILS = "health fails meanwhile"
# What `create` does about each kind of problem (see create_cluster's phases).
_REMEDY: dict[ProblemKind, str] = {
    "server-down": "create waits for Hetzner to run it",
    "talos-unreachable": f"{_WAITS} to answer and names it if it never does; {_FAILS}",
    "service": f"{_WAITS} (health gate); {_FAILS}",
    "etcd-missing": f"{_WAITS} to join etcd",
    "etcd-learner": f"{_WAITS} to be promoted",
    "etcd-unexpected": "create does not remove it: health fails until it is "
    "(talosctl etcd remove-member)",
    "not-registered": f"{_WAITS} to register",
    "not-ready": f"{_WAITS} to be Ready",
    "unexpected-node": "create does not remove it: health fails until it is (kubectl delete node)",
    "cordoned": "create does not uncordon it: health fails until it is (kubectl uncordon)",
    "control-plane-pod": f"{_WAITS} (health gate); {_FAILS}",
}
_VIA_API = frozenset({"nodes ready", "nodes schedulable", "control plane pods"})
_BASIC_FIRST = {kind: rank for rank, kind in enumerate(get_args(ProblemKind))}


@dataclass(frozen=True)
class Finding:
    """A problem ``plan`` lists as pending work; ``node`` is empty for the cluster as a whole."""

    node: str
    problem: str
    remedy: str

    def __str__(self) -> str:
        head = f"{self.node}: {self.problem}" if self.node else self.problem
        return f"{head} — {self.remedy}"

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node or None, "problem": self.problem, "create": self.remedy}


@dataclass(frozen=True)
class ClusterProbe:
    """``checked``: the cluster answered the probe (its findings are the whole story)."""

    checked: bool
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def unchecked(cls, why: str, remedy: str = "hk8s health shows what fails") -> ClusterProbe:
        """The probe could not ask the cluster: said as such, never taken for health."""
        return cls(False, [Finding("", f"cluster health not checked: {why}", remedy)])


async def probe_cluster(
    talos: TalosNodeAPI,
    kube: KubernetesAPI,
    nodes: Sequence[Node],
    *,
    limits: HealthLimits,
    within: float,
    known: Collection[str] = (),
) -> ClusterProbe:
    """Probe once, in at most ``within`` wall seconds; ``known``: nodes the caller already
    lists (e.g. a server Hetzner does not run), left out of the findings."""
    try:
        async with asyncio.timeout(within):
            checks = await check_health(talos, kube, nodes, limits)
            unreachable = _first_problems(checks, "talos-unreachable")
            maintenance = await _in_maintenance(talos, [n for n in nodes if n.name in unreachable],
                                                limits)  # fmt: skip
    except TimeoutError:
        return ClusterProbe.unchecked(f"no answer within {within:g}s")  # a hung API
    by_kind = {c.name: c for c in checks}
    api_answers = by_kind["kubernetes api"].ok
    running = [n for n in nodes if n.server.status == "running"]
    silent = unreachable - maintenance
    if not api_answers and running and all(n.name in silent for n in running):
        why = _unreachable_why(checks)
        return ClusterProbe.unchecked(
            f"neither Talos nor Kubernetes answered ({why})",
            "run it from an address the cluster's firewall admits (firewall.talos_api_sources "
            "and kube_api_sources); hk8s health shows what fails",
        )
    findings = []
    for node, problem in sorted(_most_basic(checks).items()):
        if node in known:
            continue
        if node in maintenance:
            findings.append(Finding(node, "in maintenance mode (no machine config)",
                                    "create applies its machine config"))  # fmt: skip
            continue
        what = problem.what if problem.kind != "talos-unreachable" else (
            f"Talos API unreachable ({problem.what})")  # fmt: skip
        findings.append(Finding(node, what, _REMEDY[problem.kind]))
    for check in checks:
        # Without the Kubernetes API its three node checks say only that: said once.
        if not check.ok and not check.problems and (api_answers or check.name not in _VIA_API):
            findings.append(Finding("", f"{check.name}: {check.detail}", f"{_WAITS}; {_FAILS}"))
    return ClusterProbe(True, findings)


def _unreachable_why(checks: Sequence[HealthCheck]) -> str:
    problems = [p for c in checks for p in c.problems if p.kind == "talos-unreachable"]
    return problems[0].what if problems else "nothing answered"


def _first_problems(checks: Sequence[HealthCheck], kind: ProblemKind) -> set[str]:
    return {p.node for c in checks for p in c.problems if p.kind == kind}


def _most_basic(checks: Sequence[HealthCheck]) -> dict[str, NodeProblem]:
    """Each node's most basic problem: a node whose Talos API is down is not Ready either,
    and saying so twice hides what to do."""
    found: dict[str, NodeProblem] = {}
    for check in checks:
        for problem in check.problems:
            have = found.get(problem.node)
            if have is None or _BASIC_FIRST[problem.kind] < _BASIC_FIRST[have.kind]:
                found[problem.node] = problem
    return found


async def _in_maintenance(
    talos: TalosNodeAPI, nodes: Sequence[Node], limits: HealthLimits
) -> set[str]:
    """The nodes among ``nodes`` that answer in maintenance mode (create's own test)."""

    async def one(node: Node) -> str | None:
        try:
            configured = await limits.within(probe_configured(talos, node), node.name)
        except Hk8sError:
            return None  # neither way: unreachable it stays
        return None if configured else node.name

    return {n for n in await asyncio.gather(*(one(n) for n in nodes)) if n is not None}
