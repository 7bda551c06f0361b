"""The scheduler and the kubelets: binding pods to nodes and running their containers.

Scheduling honours what a client can see decide placement: taints against tolerations
(NoSchedule/NoExecute, ``Exists``/``Equal``, empty key = everything), ``nodeSelector``, and
cordoned nodes (``node.kubernetes.io/unschedulable``); it spreads pods to the least-loaded node.
Kubelets start a pod after a delay once its node's kubelet is up and, unless the pod uses the
host network, the CNI is ready; env references to missing Secrets/ConfigMaps keep it in
``CreateContainerConfigError``; Job pods run to completion, helm Job pods run ``_helm``, and
Job pods whose image the world plays (``Cluster.programs``: talos-backup) run that program
with the container's environment and Secret volumes, exiting with its result.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from hk8s.sim.kube._charts import CRASH_ANNOTATION
from hk8s.sim.kube._cluster import PodRun
from hk8s.sim.kube._helm import HelmError, helm_argv, release_name, run_helm
from hk8s.sim.kube._status import KubeError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hk8s.sim.kube._cluster import Cluster

__all__ = ["evict_for_taints", "run_kubelets", "schedule", "tolerates_node"]

Obj = dict[str, Any]


def _tolerated(taint: Obj, tolerations: list[Obj]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def tolerates_node(pod: Obj, node: Obj) -> bool:
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(
            taint, tolerations
        ):
            return False
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    # nodeSelectorTerms are ORed, the expressions of a term ANDed (core/v1 NodeSelector).
    return any(
        all(_expression(e, labels) for e in term.get("matchExpressions") or [])
        for term in required.get("nodeSelectorTerms") or []
    )


def _expression(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and key in labels and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _live(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def schedule(cluster: Cluster, pods: list[Obj], nodes: list[Obj]) -> None:
    rt = cluster.rt("v1", "Pod")
    load: dict[str, int] = {n["metadata"]["name"]: 0 for n in nodes}
    for pod in pods:
        if _live(pod) and pod["spec"].get("nodeName") in load:
            load[pod["spec"]["nodeName"]] += 1
    for pod in pods:
        if pod["spec"].get("nodeName") or not _live(pod):
            continue
        fits = [n for n in nodes if tolerates_node(pod, n)]
        now = cluster.store.timestamp()
        status = dict(pod.get("status") or {})
        if not fits:
            status["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": _unschedulable_message(pod, nodes),
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                }
            ]
            cluster.set_status(rt, pod, status, manager="default-scheduler")
            continue
        chosen = min(fits, key=lambda n: (load[n["metadata"]["name"]], n["metadata"]["name"]))
        name = chosen["metadata"]["name"]
        load[name] += 1
        bound = dict(pod)
        bound["spec"] = {**pod["spec"], "nodeName": name}
        pod = cluster.save(rt, bound, manager="default-scheduler")
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
        ]
        cluster.set_status(rt, pod, status, manager="default-scheduler")


def _unschedulable_message(pod: Obj, nodes: list[Obj]) -> str:
    """Like the scheduler's FitError: ``0/3 nodes are available: 3 node(s) had ...``."""
    reasons: dict[str, int] = {}
    tolerations = pod["spec"].get("tolerations") or []
    for node in nodes:
        taints = [
            t
            for t in (node.get("spec") or {}).get("taints") or []
            if t.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(t, tolerations)
        ]
        if taints:
            t = taints[0]
            text = f"node(s) had untolerated taint {{{t['key']}: {t.get('value', '')}}}"
        else:
            text = "node(s) didn't match Pod's node affinity/selector"
        reasons[text] = reasons.get(text, 0) + 1
    detail = ", ".join(f"{count} {text}" for text, count in sorted(reasons.items()))
    total = len(nodes)
    return (
        f"0/{total} nodes are available: {detail + '. ' if detail else ''}preemption: 0/"
        f"{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )


def _missing_reference(cluster: Cluster, pod: Obj) -> tuple[str, str] | None:
    """(reason, message) when a container cannot be created yet, as kubelet reports it."""
    ns = pod["metadata"]["namespace"]
    secrets, maps = cluster.rt("v1", "Secret"), cluster.rt("v1", "ConfigMap")
    for volume in pod["spec"].get("volumes") or []:
        for key, rt, ref in (("secret", secrets, "secretName"), ("configMap", maps, "name")):
            source = volume.get(key)
            if (
                source
                and not source.get("optional")
                and cluster.store.get(rt, ns, str(source.get(ref))) is None
            ):
                return "ContainerCreating", ""
    for container in pod["spec"].get("containers") or []:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for key, rt, kind in (
                ("secretKeyRef", secrets, "secret"),
                ("configMapKeyRef", maps, "configmap"),
            ):
                key_ref = value_from.get(key)
                if not key_ref or key_ref.get("optional"):
                    continue
                obj = cluster.store.get(rt, ns, key_ref["name"])
                if obj is None:
                    return "CreateContainerConfigError", f'{kind} "{key_ref["name"]}" not found'
                if key_ref["key"] not in (obj.get("data") or {}):
                    label = "Secret" if kind == "secret" else "ConfigMap"
                    return (
                        "CreateContainerConfigError",
                        f"couldn't find key {key_ref['key']} in {label} {ns}/{key_ref['name']}",
                    )
    return None


def _container_statuses(pod: Obj, state: Obj, ready: bool, restarts: int = 0) -> list[Obj]:
    return [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": ready,
            "started": "running" in state,
            "restartCount": restarts,
            "state": state,
            **(
                {"containerID": f"containerd://{pod['metadata']['uid'].replace('-', '')}"}
                if "waiting" not in state
                else {}
            ),
        }
        for c in pod["spec"].get("containers") or []
    ]


def _conditions(ready: bool, now: str, reason: str | None = None) -> list[Obj]:
    def one(kind: str, ok: bool) -> Obj:
        out = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": now,
        }
        if not ok and reason:
            out["reason"] = reason
        return out

    return [
        one("PodReadyToStartContainers", True),
        one("Initialized", True),
        one("Ready", ready),
        one("ContainersReady", ready),
        one("PodScheduled", True),
    ]


def evict_for_taints(cluster: Cluster, pods: list[Obj], nodes: list[Obj]) -> None:
    """The taint eviction controller: a pod on a node with a NoExecute taint it does not
    tolerate is deleted, at once or after its toleration's ``tolerationSeconds``."""
    rt = cluster.rt("v1", "Pod")
    taints_of = {
        n["metadata"]["name"]: [
            t for t in (n.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"
        ]
        for n in nodes
    }
    for pod in pods:
        taints = taints_of.get(pod["spec"].get("nodeName") or "")
        if not taints or not _live(pod):
            continue
        tolerations = pod["spec"].get("tolerations") or []
        for taint in taints:
            matching = [t for t in tolerations if _tolerated(taint, [t])]
            if matching and any(t.get("tolerationSeconds") is None for t in matching):
                continue
            allowed = min((float(t["tolerationSeconds"]) for t in matching), default=0.0)
            waited = cluster.store.seconds_since(
                taint.get("timeAdded") or cluster.store.timestamp()
            )
            if waited >= allowed:
                meta = pod["metadata"]
                if cluster.store.get(rt, meta["namespace"], meta["name"]) is not None:
                    cluster.verbs.delete(rt, meta["namespace"], meta["name"])
                break


def run_kubelets(cluster: Cluster, pods: list[Obj], nodes: list[Obj], cni: set[str]) -> None:
    rt = cluster.rt("v1", "Pod")
    known = {n["metadata"]["name"]: n for n in nodes}
    for pod in pods:
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            continue
        uid = pod["metadata"]["uid"]
        if node_name not in known:
            # Pod GC: pods bound to a node that no longer exists are deleted.
            if cluster.store.get(rt, pod["metadata"]["namespace"], pod["metadata"]["name"]):
                cluster.verbs.delete(rt, pod["metadata"]["namespace"], pod["metadata"]["name"])
            continue
        status = dict(pod.get("status") or {})
        phase = status.get("phase")
        if phase in ("Succeeded", "Failed"):
            continue
        runtime = cluster.nodes.get(node_name)
        now = cluster.now()
        stamp = cluster.store.timestamp()
        if runtime is None or not runtime.kubelet_ready:
            if phase == "Running":
                status["conditions"] = _conditions(False, stamp, "ContainersNotReady")
                cluster.set_status(rt, pod, status, manager="kubelet")
            continue
        host_network = bool(pod["spec"].get("hostNetwork"))
        status.setdefault("hostIP", runtime.internal_ip)
        status.setdefault("hostIPs", [{"ip": runtime.internal_ip}])
        status.setdefault("startTime", stamp)
        blocked = None if host_network or node_name in cni else ("ContainerCreating", "")
        blocked = blocked or _missing_reference(cluster, pod)
        if blocked is not None and phase != "Running":
            cluster.started.pop(uid, None)
            reason, message = blocked
            waiting = {"reason": reason, **({"message": message} if message else {})}
            status["containerStatuses"] = _container_statuses(pod, {"waiting": waiting}, False)
            status["conditions"] = _conditions(False, stamp, "ContainersNotReady")
            cluster.set_status(rt, pod, status, manager="kubelet")
            continue
        began = cluster.started.setdefault(uid, now)
        if phase != "Running" and now - began < cluster.timings.pod_start:
            continue
        _run(cluster, pod, status, host_network, runtime.internal_ip, now, stamp)


def _run(
    cluster: Cluster,
    pod: Obj,
    status: Obj,
    host_network: bool,
    node_ip: str,
    now: float,
    stamp: str,
) -> None:
    rt = cluster.rt("v1", "Pod")
    uid = pod["metadata"]["uid"]
    since = cluster.running_since.setdefault(uid, now)
    ip = node_ip if host_network else status.get("podIP") or cluster.pod_ip()
    status.update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]})
    crash = (pod["metadata"].get("annotations") or {}).get(CRASH_ANNOTATION)
    first = pod["spec"]["containers"][0]["name"]
    logs = cluster.logs.setdefault(uid, {})
    if crash:
        restarts = int((now - since) // cluster.timings.crash_backoff)
        logs[first] = crash + "\n"
        state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": "back-off restarting "
                f"failed container {first} in pod {pod['metadata']['name']}",
            }
        }
        status["containerStatuses"] = _container_statuses(pod, state, False, restarts)
        status["conditions"] = _conditions(False, stamp, "ContainersNotReady")
        cluster.set_status(rt, pod, status, manager="kubelet")
        return
    owner_kinds = {r.get("kind") for r in pod["metadata"].get("ownerReferences") or []}
    program = _program(cluster, pod) if "Job" in owner_kinds else None
    if program is not None:
        logs.setdefault(first, "")
        run = cluster.program_runs.get(uid)
        if run is None:
            run = asyncio.ensure_future(program(_pod_run(cluster, pod)))
            run.add_done_callback(lambda _: cluster.store.changed.set())
            cluster.program_runs[uid] = run
        elif run.done():
            del cluster.program_runs[uid]
            try:
                result = run.result()
            except Exception as exc:  # a program's bug is the container's crash
                result = (2, f"panic: {exc}\n")
            _finish(cluster, pod, status, None, stamp, result=result)
            return
    elif "Job" in owner_kinds:
        logs.setdefault(first, "")  # running: the log exists, its output comes at the end
        args = helm_argv(pod)
        duration = cluster.timings.job_run
        if args is not None:
            duration = cluster.timings.helm_run + cluster.faults.slow_releases.get(
                release_name(args) or "", 0.0
            )
        if now - since >= duration:
            _finish(cluster, pod, status, args, stamp)
            return
    else:
        for container in pod["spec"]["containers"]:
            logs.setdefault(container["name"], f"{stamp} {container['name']} started\n")
    started = {"running": {"startedAt": stamp}}
    prior = (status.get("containerStatuses") or [{}])[0].get("state") or {}
    if "running" in prior:
        started = prior
    status["containerStatuses"] = _container_statuses(pod, started, True)
    status["conditions"] = _conditions(True, stamp)
    cluster.set_status(rt, pod, status, manager="kubelet")


def _exit_status(container: Obj) -> tuple[int, str]:
    """What a plain Job container's command exits with: ``false`` and ``exit N`` scripts are
    understood (so a test can make a Job fail), anything else succeeds silently."""
    argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    if argv and argv[0].rsplit("/", 1)[-1] == "false":
        return 1, ""
    if len(argv) >= 3 and argv[1] == "-c" and argv[0].rsplit("/", 1)[-1] in ("sh", "bash"):
        script = argv[2].strip()
        if script.startswith("exit ") and script[5:].strip().isdigit():
            return int(script[5:].strip()), ""
    return 0, ""


def _program(cluster: Cluster, pod: Obj) -> Callable[[PodRun], Awaitable[tuple[int, str]]] | None:
    """The world's program for the pod's first container image (by repository), if any."""
    image = str(pod["spec"]["containers"][0].get("image") or "")
    repository = image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in image else image
    return cluster.programs.get(repository)


def _pod_run(cluster: Cluster, pod: Obj) -> PodRun:
    """The first container's environment and Secret volume files, as the kubelet sets them."""
    ns = pod["metadata"]["namespace"]
    secrets = cluster.rt("v1", "Secret")
    container = pod["spec"]["containers"][0]

    def secret_data(name: str) -> dict[str, bytes]:
        obj = cluster.store.get(secrets, ns, name) or {}
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    env: dict[str, str] = {}
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            value = secret_data(ref["name"]).get(ref["key"])
            if value is not None:
                env[item["name"]] = value.decode()
        elif "value" in item:
            env[item["name"]] = str(item["value"])
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    files: dict[str, bytes] = {}
    for mount in container.get("volumeMounts") or []:
        source = (volumes.get(mount["name"]) or {}).get("secret")
        if source:
            for key, value in secret_data(str(source.get("secretName"))).items():
                files[f"{mount['mountPath'].rstrip('/')}/{key}"] = value
    return PodRun(ns, pod["metadata"]["name"], pod["spec"].get("nodeName") or "", env, files)


def _finish(
    cluster: Cluster,
    pod: Obj,
    status: Obj,
    args: list[str] | None,
    stamp: str,
    *,
    result: tuple[int, str] | None = None,
) -> None:
    rt = cluster.rt("v1", "Pod")
    first = pod["spec"]["containers"][0]["name"]
    code, output = 0, ""
    if result is not None:
        code, output = result
    elif args is not None:
        try:
            output = run_helm(cluster.verbs, pod, args, cluster.faults, stamp)
        except HelmError as exc:
            code, output = 1, f"Error: {exc}\n"
        except KubeError as exc:
            code, output = 1, f"Error: {exc.message}\n"
    else:
        code, output = _exit_status(pod["spec"]["containers"][0])
    cluster.logs.setdefault(pod["metadata"]["uid"], {})[first] = output
    started = (
        ((status.get("containerStatuses") or [{}])[0].get("state") or {})
        .get("running", {})
        .get("startedAt", stamp)
    )
    state = {
        "terminated": {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": stamp,
        }
    }
    status["phase"] = "Succeeded" if code == 0 else "Failed"
    status["containerStatuses"] = _container_statuses(pod, state, False)
    status["conditions"] = _conditions(False, stamp, "PodCompleted" if code == 0 else "PodFailed")
    cluster.set_status(rt, pod, status, manager="kubelet")
