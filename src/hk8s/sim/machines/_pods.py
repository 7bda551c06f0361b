"""Pod status as a kubelet writes it: container states, conditions, and why a pod cannot start.

Shapes follow kubelet's ``generateAPIPodStatus`` (``pkg/kubelet/kubelet_pods.go``): the five
pod conditions, one status per container (``waiting``/``running``/``terminated``), and the
``CreateContainerConfigError`` messages of ``kuberuntime`` for env references to a Secret or
ConfigMap (or a key) that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hk8s.sim.k8s import KubeClient

__all__ = ["conditions", "container_statuses", "exit_status", "missing_reference", "timestamp"]

Obj = dict[str, Any]
_VOLUME_SOURCES = (("secret", "secrets", "secretName"), ("configMap", "configmaps", "name"))


def timestamp() -> str:
    """Now, as the API's ``metav1.Time`` (the real server's clock: wall time)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def container_statuses(pod: Obj, state: Obj, ready: bool, restarts: int = 0) -> list[Obj]:
    return [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": ready,
            "started": "running" in state,
            "restartCount": restarts,
            "lastState": {},
            "state": state,
            **(
                {"containerID": f"containerd://{pod['metadata']['uid'].replace('-', '')}"}
                if "waiting" not in state
                else {}
            ),
        }
        for c in pod["spec"].get("containers") or []
    ]


def conditions(ready: bool, now: str, reason: str | None = None) -> list[Obj]:
    def one(kind: str, ok: bool) -> Obj:
        out: Obj = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": now}
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


async def missing_reference(api: KubeClient, pod: Obj) -> tuple[str, str] | None:
    """(reason, message) when a container cannot be created yet, as kubelet reports it."""
    ns = pod["metadata"]["namespace"]
    for volume in pod["spec"].get("volumes") or []:
        for key, plural, ref in _VOLUME_SOURCES:
            source = volume.get(key)
            if source and not source.get("optional"):
                path = f"/api/v1/namespaces/{ns}/{plural}/{source.get(ref)}"
                if await api.get_or_none(path) is None:
                    return "ContainerCreating", ""
    for container in pod["spec"].get("containers") or []:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for key, plural, kind in (
                ("secretKeyRef", "secrets", "secret"),
                ("configMapKeyRef", "configmaps", "configmap"),
            ):
                key_ref = value_from.get(key)
                if not key_ref or key_ref.get("optional"):
                    continue
                path = f"/api/v1/namespaces/{ns}/{plural}/{key_ref['name']}"
                obj = await api.get_or_none(path)
                if obj is None:
                    return "CreateContainerConfigError", f'{kind} "{key_ref["name"]}" not found'
                if key_ref["key"] not in (obj.get("data") or {}):
                    label = "Secret" if kind == "secret" else "ConfigMap"
                    return (
                        "CreateContainerConfigError",
                        f"couldn't find key {key_ref['key']} in {label} {ns}/{key_ref['name']}",
                    )
    return None


def exit_status(container: Obj) -> int:
    """What a plain Job container's command exits with: ``false`` and ``sh -c 'exit N'`` are
    understood (so a test can make a Job fail), anything else succeeds silently."""
    argv = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    if argv and argv[0].rsplit("/", 1)[-1] == "false":
        return 1
    if len(argv) >= 3 and argv[1] == "-c" and argv[0].rsplit("/", 1)[-1] in ("sh", "bash"):
        script = argv[2].strip()
        if script.startswith("exit ") and script[5:].strip().isdigit():
            return int(script[5:].strip())
    return 0
