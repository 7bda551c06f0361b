"""Per-kind defaulting and the validation a client is likely to trip over.

Defaults are those of pkg/apis/*/v1/defaults.go that change behaviour hk8s can observe
(replicas, restart policies, backoff limits, Secret type, ...); validation covers names and the
few required fields whose absence a real API server rejects with 422 Invalid.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from hk8s.model.cron import CronError, parse_cron
from hk8s.sim.kube._status import KubeError

__all__ = ["default_object", "initial_status", "validate_object"]

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    if "serviceAccountName" in spec:
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        tag = str(container.get("image", "")).rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("resources", {})


def _template(obj: Obj, restart: str = "Always") -> None:
    template = obj.setdefault("spec", {}).setdefault("template", {})
    template.setdefault("metadata", {})
    spec = template.setdefault("spec", {})
    spec.setdefault("restartPolicy", restart)
    _pod_spec(spec)


def default_object(kind: str, obj: Obj) -> None:
    spec = obj.get("spec")
    if kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) if string_data or "data" in obj else None
        for key, value in string_data.items():
            assert data is not None
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "Pod" and isinstance(spec, dict):
        _pod_spec(spec)
    elif kind in ("Deployment", "ReplicaSet"):
        obj.setdefault("spec", {}).setdefault("replicas", 1)
        if kind == "Deployment":
            obj["spec"].setdefault("revisionHistoryLimit", 10)
            obj["spec"].setdefault("progressDeadlineSeconds", 600)
            obj["spec"].setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        _template(obj)
    elif kind == "DaemonSet":
        obj.setdefault("spec", {}).setdefault("revisionHistoryLimit", 10)
        obj["spec"].setdefault(
            "updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        )
        _template(obj)
    elif kind == "Job":
        job = obj.setdefault("spec", {})
        job.setdefault("backoffLimit", 6)
        job.setdefault("completions", 1)
        job.setdefault("parallelism", 1)
        job.setdefault("completionMode", "NonIndexed")
        job.setdefault("suspend", False)
        _template(obj, restart="Never")
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))


def initial_status(kind: str) -> Obj:
    if kind == "Pod":
        return {"phase": "Pending", "qosClass": "BestEffort"}
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind == "Service":
        return {"loadBalancer": {}}
    if kind in ("PersistentVolumeClaim", "PersistentVolume"):
        # No provisioner runs here: claims stay Pending, as with WaitForFirstConsumer and no
        # consuming pod (hcloud-volumes' binding mode).
        return {"phase": "Pending" if kind == "PersistentVolumeClaim" else "Available"}
    return {}


def validate_object(kind: str, group: str, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    if not name:
        causes.append(
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        )
    elif group == "rbac.authorization.k8s.io":
        # RBAC objects only need a valid path segment (ValidateRBACName), e.g. "system:foo".
        if name in (".", "..") or "/" in name or "%" in name:
            causes.append(
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: \"{name}\": may not contain '/' or '%'",
                )
            )
    elif len(name) > 253 or not _SUBDOMAIN.match(name):
        causes.append(
            ("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {_SUBDOMAIN_MSG}')
        )
    if kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                causes.append((f"data[{key}]", "FieldValueInvalid", "Invalid value: not base64"))
    if kind in ("Deployment", "DaemonSet", "ReplicaSet"):
        spec = obj.get("spec") or {}
        selector = (spec.get("selector") or {}).get("matchLabels")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not spec.get("selector"):
            causes.append(("spec.selector", "FieldValueRequired", "Required value"))
        elif selector and any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    "FieldValueInvalid",
                    f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                )
            )
    if kind == "CronJob":
        # apis/batch/validation ValidateCronJobSpec: the schedule must parse (robfig/cron).
        schedule = str((obj.get("spec") or {}).get("schedule") or "")
        try:
            parse_cron(schedule)
        except CronError as exc:
            causes.append(("spec.schedule", "FieldValueInvalid",
                           f'Invalid value: "{schedule}": {exc}'))  # fmt: skip
    pod_spec = (obj.get("spec") or {}) if kind == "Pod" else None
    if kind in ("Deployment", "DaemonSet", "ReplicaSet", "Job"):
        pod_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        prefix = "spec.template.spec"
    else:
        prefix = "spec"
    if pod_spec is not None:
        containers = pod_spec.get("containers") or []
        if not containers:
            causes.append((f"{prefix}.containers", "FieldValueRequired", "Required value"))
        for i, container in enumerate(containers):
            if not container.get("name"):
                causes.append(
                    (f"{prefix}.containers[{i}].name", "FieldValueRequired", "Required value")
                )
            if not container.get("image"):
                causes.append(
                    (f"{prefix}.containers[{i}].image", "FieldValueRequired", "Required value")
                )
    if causes:
        raise KubeError.invalid(kind, group, name, causes)
