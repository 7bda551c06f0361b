"""Workload controllers: Deployment -> ReplicaSet -> Pods, DaemonSets, Jobs, disruption
budgets, owner-reference garbage collection and namespace finalization.

Each follows its kube-controller-manager counterpart as far as a client can observe it: names
(``<deployment>-<pod-template-hash>``, ``<owner>-<5 chars>``), owner references, labels
(``pod-template-hash``, ``batch.kubernetes.io/job-name``), and the status fields and
conditions hk8s waits on (``readyReplicas``, ``numberReady``, Job ``Complete``/``Failed``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

from hk8s.sim.kube import _resources as res
from hk8s.sim.kube._disruption import budget_status, pod_ready
from hk8s.sim.kube._kubelet import tolerates_node
from hk8s.sim.kube._status import KubeError

if TYPE_CHECKING:
    from hk8s.sim.kube._cluster import Cluster
    from hk8s.sim.kube._resources import ResourceType

__all__ = ["reconcile_workloads"]

Obj = dict[str, Any]
_KCM = "kube-controller-manager"
_HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned(objs: list[Obj], owner: Obj) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    return [
        o
        for o in objs
        if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
    ]


def _live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def _labels(obj: Obj) -> dict[str, str]:
    return dict(obj["metadata"].get("labels") or {})


def _template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_CHARS[b % len(_HASH_CHARS)] for b in digest[:10])


def _new_pod(
    cluster: Cluster,
    owner: Obj,
    extra_labels: dict[str, str],
    node: str | None,
    tolerations: list[Obj] | None = None,
) -> Obj | None:
    template = copy.deepcopy(owner["spec"]["template"])
    meta = template.get("metadata") or {}
    meta["labels"] = {**(meta.get("labels") or {}), **extra_labels}
    meta["generateName"] = owner["metadata"]["name"] + "-"
    meta["ownerReferences"] = [_owner_ref(owner)]
    meta.pop("name", None)
    spec = template["spec"]
    if node is not None:
        spec["nodeName"] = node
    if tolerations is not None:
        spec["tolerations"] = tolerations
    pod = {"metadata": meta, "spec": spec}
    # A rejected pod (missing ServiceAccount, ...) is retried on the next pass, as the
    # controllers do after a FailedCreate event.
    try:
        return cluster.verbs.create(
            cluster.rt("v1", "Pod"), owner["metadata"]["namespace"], pod, manager=_KCM
        )
    except KubeError:
        return None


def _delete(cluster: Cluster, rt: ResourceType, obj: Obj) -> None:
    meta = obj["metadata"]
    if cluster.store.get(rt, meta.get("namespace", ""), meta["name"]) is not None:
        cluster.verbs.delete(rt, meta.get("namespace", ""), meta["name"], "Background")


def _deployments(cluster: Cluster, pods: list[Obj]) -> None:
    d_rt, rs_rt = cluster.rt("apps/v1", "Deployment"), cluster.rt("apps/v1", "ReplicaSet")
    for dep in cluster.store.list(d_rt):
        ns = dep["metadata"]["namespace"]
        owned = _owned(cluster.store.list(rs_rt, ns), dep)
        pod_hash = _template_hash(dep["spec"]["template"])
        name = f"{dep['metadata']['name']}-{pod_hash}"
        current = next((rs for rs in owned if rs["metadata"]["name"] == name), None)
        replicas = int(dep["spec"].get("replicas", 1))
        if current is None:
            template = copy.deepcopy(dep["spec"]["template"])
            template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = (
                pod_hash
            )
            selector = copy.deepcopy(dep["spec"]["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
            current = cluster.verbs.create(
                rs_rt,
                ns,
                {
                    "metadata": {
                        "name": name,
                        "labels": template["metadata"]["labels"],
                        "ownerReferences": [_owner_ref(dep)],
                    },
                    "spec": {"replicas": replicas, "selector": selector, "template": template},
                },
                manager=_KCM,
            )
        elif current["spec"].get("replicas") != replicas:
            current["spec"]["replicas"] = replicas
            current = cluster.save(rs_rt, current, manager=_KCM)
        for old in owned:
            if old["metadata"]["name"] != name and old["spec"].get("replicas") != 0:
                old["spec"]["replicas"] = 0
                cluster.save(rs_rt, old, manager=_KCM)
        everything = _live([p for rs in owned for p in _owned(pods, rs)])
        new_pods = _live(_owned(pods, current))
        ready = sum(1 for p in everything if pod_ready(p))
        available = ready >= replicas
        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": len(everything),
            "updatedReplicas": len(new_pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [
                _condition(
                    "Available",
                    available,
                    "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                    "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                    cluster,
                ),
                _condition(
                    "Progressing",
                    True,
                    "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                    f'ReplicaSet "{name}" has successfully progressed.'
                    if available
                    else f'ReplicaSet "{name}" is progressing.',
                    cluster,
                ),
            ],
        }
        if replicas - ready > 0:
            status["unavailableReplicas"] = replicas - ready
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"):
            if not status[key]:
                del status[key]  # omitempty, as upstream
        cluster.set_status(d_rt, dep, status, manager=_KCM)


def _condition(kind: str, ok: bool, reason: str, message: str, cluster: Cluster) -> Obj:
    now = cluster.store.timestamp()
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }


def _replicasets(cluster: Cluster, pods: list[Obj]) -> None:
    rt, pod_rt = cluster.rt("apps/v1", "ReplicaSet"), cluster.rt("v1", "Pod")
    for rs in cluster.store.list(rt):
        mine = _live(_owned(pods, rs))
        want = int(rs["spec"].get("replicas", 1))
        for _ in range(want - len(mine)):
            created = _new_pod(cluster, rs, {}, None)
            if created is None:
                break
            mine.append(created)
        if len(mine) > want:
            # Delete unscheduled, then not-ready pods first (controller.ActivePods ordering).
            doomed = sorted(mine, key=lambda p: (bool(p["spec"].get("nodeName")), pod_ready(p)))
            for pod in doomed[: len(mine) - want]:
                _delete(cluster, pod_rt, pod)
                mine.remove(pod)
        ready = sum(1 for p in mine if pod_ready(p))
        status = {
            "replicas": len(mine),
            "fullyLabeledReplicas": len(mine),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        # ReplicaSetStatus.replicas is required; the counts are omitempty.
        status = {k: v for k, v in status.items() if v or k == "replicas"}
        cluster.set_status(rt, rs, status, manager=_KCM)


# DaemonSet pods tolerate these on top of their own (daemon/util.AddOrUpdateDaemonPodTolerations).
_DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _daemonsets(cluster: Cluster, pods: list[Obj]) -> None:
    rt, pod_rt, node_rt = (
        cluster.rt("apps/v1", "DaemonSet"),
        cluster.rt("v1", "Pod"),
        cluster.rt("v1", "Node"),
    )
    nodes = cluster.store.list(node_rt)
    for ds in cluster.store.list(rt):
        spec = ds["spec"]["template"]["spec"]
        tolerations = [*(spec.get("tolerations") or []), *_DAEMON_TOLERATIONS]
        probe = {"spec": {**spec, "tolerations": tolerations}}
        wanted = {n["metadata"]["name"] for n in nodes if tolerates_node(probe, n)}
        revision = {"controller-revision-hash": _template_hash(ds["spec"]["template"])}
        mine = _live(_owned(pods, ds))
        by_node = {p["spec"].get("nodeName"): p for p in mine}
        for pod in mine:
            if pod["spec"].get("nodeName") not in wanted:
                _delete(cluster, pod_rt, pod)
        for node in sorted(wanted - by_node.keys()):
            created = _new_pod(cluster, ds, revision, node, tolerations)
            if created is not None:
                by_node[node] = created
        scheduled = [p for n, p in by_node.items() if n in wanted]
        ready = sum(1 for p in scheduled if pod_ready(p))
        updated = [p for p in scheduled if _labels(p).items() >= revision.items()]
        outdated = [p for p in scheduled if p not in updated]
        # RollingUpdate with maxUnavailable 1: replace one old pod while all others are ready.
        if outdated and ready >= len(scheduled) - (0 if pod_ready(outdated[0]) else 1):
            _delete(cluster, pod_rt, outdated[0])
        status = {
            "currentNumberScheduled": len(scheduled),
            "desiredNumberScheduled": len(wanted),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": len(updated),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if len(wanted) - ready:
            status["numberUnavailable"] = len(wanted) - ready
        if not ready:
            del status["numberAvailable"]
        cluster.set_status(rt, ds, status, manager=_KCM)


def _jobs(cluster: Cluster, pods: list[Obj]) -> None:
    rt = cluster.rt("batch/v1", "Job")
    for job in cluster.store.list(rt):
        spec, status = job["spec"], copy.deepcopy(job.get("status") or {})
        conditions = status.get("conditions") or []
        finished = [
            c for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"
        ]
        if finished:
            _expire(cluster, rt, job, finished[0])
            continue
        mine = _owned(pods, job)
        active = _live(mine)
        succeeded = sum(1 for p in mine if p["status"].get("phase") == "Succeeded")
        failed = sum(1 for p in mine if p["status"].get("phase") == "Failed")
        now = cluster.store.timestamp()
        status.setdefault("startTime", now)
        uid = job["metadata"]["uid"]
        if failed > cluster.job_failures.get(uid, 0):
            # Pod failure backoff: 10 s doubling, capped at 6 min (job controller defaults).
            cluster.job_failures[uid] = failed
            cluster.backoff_until[uid] = cluster.now() + min(360.0, 10.0 * 2 ** (failed - 1))
        if succeeded >= int(spec.get("completions", 1)):
            status["completionTime"] = now
            status["conditions"] = [
                _job_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ),
                _job_condition(
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ),
            ]
        elif failed > int(spec.get("backoffLimit", 6)):
            for pod in active:
                _delete(cluster, cluster.rt("v1", "Pod"), pod)
            active = []
            status["conditions"] = [
                _job_condition(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ),
                _job_condition(
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    now,
                ),
            ]
        elif (
            not active
            and not spec.get("suspend")
            and cluster.now() >= cluster.backoff_until.get(uid, 0.0)
        ):
            labels = {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": job["metadata"]["name"],
                "controller-uid": uid,
                "job-name": job["metadata"]["name"],
            }
            created = _new_pod(cluster, job, labels, None)
            active = [created] if created is not None else []
        status.update(
            {
                "active": len(active),
                "succeeded": succeeded,
                "failed": failed,
                "ready": sum(1 for p in active if pod_ready(p)),
                "terminating": 0,
                "uncountedTerminatedPods": {},
            }
        )
        for key in ("active", "succeeded", "failed"):
            if not status[key]:
                del status[key]
        cluster.set_status(rt, job, status, manager=_KCM)


def _expire(cluster: Cluster, rt: ResourceType, job: Obj, finished: Obj) -> None:
    """The TTL-after-finished controller: delete the Job (and its pods) ``ttl`` s after."""
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    if ttl is None:
        return
    uid = job["metadata"]["uid"]
    done_at = cluster.finished_at.setdefault(uid, cluster.now())
    if cluster.now() - done_at >= float(ttl):
        cluster.verbs.delete(
            rt, job["metadata"]["namespace"], job["metadata"]["name"], "Background"
        )


def _job_condition(kind: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def _budgets(cluster: Cluster, pods: list[Obj]) -> None:
    rt = cluster.rt("policy/v1", "PodDisruptionBudget")
    for pdb in cluster.store.list(rt):
        status = budget_status(cluster.store, pdb, pods)
        cluster.set_status(rt, pdb, status, manager=_KCM)


def _garbage(cluster: Cluster) -> None:
    """The garbage collector: dependents whose owners are all gone go too (Background)."""
    everything = [(rt, o) for rt in res.RESOURCES for o in cluster.store.peek(rt)]
    uids = {o["metadata"]["uid"] for _, o in everything}
    for rt, obj in everything:
        refs = obj["metadata"].get("ownerReferences") or []
        if refs and not any(r.get("uid") in uids for r in refs):
            _delete(cluster, rt, obj)


def _namespaces(cluster: Cluster, ca_pem: str) -> None:
    rt = cluster.rt("v1", "Namespace")
    for ns in cluster.store.list(rt):
        name = ns["metadata"]["name"]
        if (ns.get("status") or {}).get("phase") == "Terminating":
            for kind_rt in res.RESOURCES:
                if kind_rt.namespaced:
                    for obj in cluster.store.list(kind_rt, name):
                        cluster.store.delete(kind_rt, name, obj["metadata"]["name"])
            cluster.store.delete(rt, "", name)
            continue
        sa_rt, cm_rt = cluster.rt("v1", "ServiceAccount"), cluster.rt("v1", "ConfigMap")
        if cluster.store.get(sa_rt, name, "default") is None:
            cluster.verbs.create(sa_rt, name, {"metadata": {"name": "default"}}, manager=_KCM)
        if cluster.store.get(cm_rt, name, "kube-root-ca.crt") is None:
            cluster.verbs.create(
                cm_rt,
                name,
                {
                    "metadata": {
                        "name": "kube-root-ca.crt",
                        "annotations": {
                            "kubernetes.io/description": "Contains a CA bundle "
                            "that can be used to verify the kube-apiserver "
                            "when using internal endpoints such as the "
                            "internal service IP or kubernetes.default.svc. "
                            "No other usage is guaranteed across "
                            "distributions of Kubernetes clusters."
                        },
                    },
                    "data": {"ca.crt": ca_pem},
                },
                manager=_KCM,
            )


def reconcile_workloads(cluster: Cluster, ca_pem: str) -> None:
    pod_rt = cluster.rt("v1", "Pod")
    _namespaces(cluster, ca_pem)
    _garbage(cluster)
    # Pods are only read here (peek: no copies); every write goes through the verbs.
    _deployments(cluster, cluster.store.peek(pod_rt))
    _replicasets(cluster, cluster.store.peek(pod_rt))
    _daemonsets(cluster, cluster.store.peek(pod_rt))
    _jobs(cluster, cluster.store.peek(pod_rt))
    _budgets(cluster, cluster.store.peek(pod_rt))
