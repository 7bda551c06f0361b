"""The Helm charts the simulated cluster knows, and the objects each one installs.

Each entry renders what its upstream chart's templates would create that hk8s can observe:
the workload names, namespaces, labels, tolerations, host networking and the Secret keys its
pods read (so a missing ``hcloud`` Secret shows up as ``CreateContainerConfigError`` exactly as
on a real cluster). Sources: cilium ``install/kubernetes/cilium``, hetznercloud
``hcloud-cloud-controller-manager/chart`` and ``csi-driver/chart``, kubernetes-sigs
``metrics-server/charts/metrics-server``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hk8s.config import ADDON_CHARTS

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CATALOG", "CRASH_ANNOTATION", "Chart"]

Obj = dict[str, Any]
# Set by a chart on a pod template whose containers would exit at start with this message
# (a misconfiguration the real program rejects): the pods crash-loop and log the message.
CRASH_ANNOTATION = "sim.hk8s.dev/crash-reason"
_ALL = [{"operator": "Exists"}]


def _get(values: Obj, path: str, default: Any) -> Any:
    """The value at ``path``, or ``default`` where it is absent or null: a user's null deletes
    the chart's default, and a template then renders what Kubernetes defaults the field to,
    which the ``default`` here stands for (e.g. one replica)."""
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


def _container(name: str, image: str, env: list[Obj] | None = None, **extra: Any) -> Obj:
    out: Obj = {"name": name, "image": image, **extra}
    if env:
        out["env"] = env
    return out


def _secret_env(var: str, secret: str, key: str) -> Obj:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _workload(
    kind: str,
    name: str,
    labels: dict[str, str],
    containers: list[Obj],
    *,
    replicas: int | None = None,
    host_network: bool = False,
    tolerations: list[Obj] | None = None,
    service_account: str | None = None,
    annotations: dict[str, str] | None = None,
    priority: str | None = None,
    selector: tuple[str, ...] | None = None,
) -> Obj:
    """A workload whose pods carry ``labels``; it selects them by the ``selector`` keys of
    those (all of them when None)."""
    pod_spec: Obj = {"containers": containers}
    if host_network:
        pod_spec["hostNetwork"] = True
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    if priority:
        pod_spec["priorityClassName"] = priority
    template: Obj = {"metadata": {"labels": dict(labels)}, "spec": pod_spec}
    if annotations:
        template["metadata"]["annotations"] = annotations
    keys = labels if selector is None else selector
    spec: Obj = {"selector": {"matchLabels": {k: labels[k] for k in keys}}, "template": template}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _sa(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}


def _cilium(version: str, values: Obj) -> list[Obj]:
    image = f"quay.io/cilium/cilium:v{version}"
    kpr = _get(values, "kubeProxyReplacement", False)
    crash: dict[str, str] | None = None
    if str(kpr).lower() in ("true", "strict") and not _get(values, "k8sServiceHost", ""):
        # cilium-agent refuses to start: with kube-proxy replacement it cannot reach the API
        # through a Service before it programs Services itself (Talos docs: k8sServiceHost).
        crash = {
            CRASH_ANNOTATION: 'level=fatal msg="kube-proxy replacement requires '
            '--k8s-api-server or k8sServiceHost to be set" subsys=daemon'
        }
    config = {
        "ipam": str(_get(values, "ipam.mode", "cluster-pool")),
        "kube-proxy-replacement": str(kpr).lower(),
        "cluster-name": str(_get(values, "cluster.name", "default")),
        "routing-mode": str(_get(values, "routingMode", "tunnel")),
    }
    return [
        _sa("cilium"),
        _sa("cilium-operator"),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cilium-config"},
            "data": config,
        },
        _workload(
            "DaemonSet",
            "cilium",
            {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent"},
            [_container("cilium-agent", image)],
            host_network=True,
            tolerations=_ALL,
            service_account="cilium",
            annotations=crash,
            priority="system-node-critical",
            selector=("k8s-app",),
        ),
        _workload(
            "Deployment",
            "cilium-operator",
            {
                "io.cilium/app": "operator",
                "name": "cilium-operator",
                "app.kubernetes.io/name": "cilium-operator",
            },
            [_container("cilium-operator", f"quay.io/cilium/operator-generic:v{version}")],
            replicas=int(_get(values, "operator.replicas", 2)),
            host_network=True,
            # The chart's operator.tolerations: not every taint, unlike the agent's.
            tolerations=[
                {"key": key, "operator": "Exists"}
                for key in (
                    "node-role.kubernetes.io/control-plane",
                    "node-role.kubernetes.io/master",
                    "node.kubernetes.io/not-ready",
                    "node.cloudprovider.kubernetes.io/uninitialized",
                    "node.cilium.io/agent-not-ready",
                )
            ],
            service_account="cilium-operator",
            priority="system-cluster-critical",
            selector=("io.cilium/app", "name"),
        ),
    ]


def _ccm(version: str, values: Obj) -> list[Obj]:
    token = _get(values, "env.HCLOUD_TOKEN.valueFrom.secretKeyRef", {}) or {}
    env = [_secret_env("HCLOUD_TOKEN", token.get("name", "hcloud"), token.get("key", "token"))]
    networking = bool(_get(values, "networking.enabled", False))
    if networking:  # the chart's networking.network.valueFrom becomes HCLOUD_NETWORK
        network = _get(values, "networking.network.valueFrom.secretKeyRef", {}) or {}
        env.append(
            _secret_env(
                "HCLOUD_NETWORK", network.get("name", "hcloud"), network.get("key", "network")
            )
        )
    # The chart's `env` map becomes the container's environment (templates/deployment.yaml
    # ranges over .Values.env); the literal values are what the CCM reads as its defaults.
    for name, spec in sorted((_get(values, "env", {}) or {}).items()):
        if isinstance(spec, dict) and "value" in spec and name != "HCLOUD_TOKEN":
            env.append({"name": name, "value": str(spec["value"])})
    # templates/deployment.yaml at v1.35.0, in its order.
    tolerations = [
        {
            "key": "node.cloudprovider.kubernetes.io/uninitialized",
            "value": "true",
            "effect": "NoSchedule",
        },
        {"key": "CriticalAddonsOnly", "operator": "Exists"},
        {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule", "operator": "Exists"},
        {
            "key": "node-role.kubernetes.io/control-plane",
            "effect": "NoSchedule",
            "operator": "Exists",
        },
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
    ]
    # templates/deployment.yaml or daemonset.yaml, as the chart's `kind` says.
    kind = "DaemonSet" if _get(values, "kind", "Deployment") == "DaemonSet" else "Deployment"
    # The chart's RBAC (a restricted ClusterRole since v1.28) is left out: the simulated CCM
    # acts from outside the cluster (hk8s.sim.machines._cloudside), so none of it is used.
    return [
        _sa("hcloud-cloud-controller-manager"),
        _workload(
            kind,
            "hcloud-cloud-controller-manager",
            {
                "app.kubernetes.io/name": "hcloud-cloud-controller-manager",
                "app.kubernetes.io/instance": "hcloud-cloud-controller-manager",
            },
            [
                _container(
                    "hcloud-cloud-controller-manager",
                    f"docker.io/hetznercloud/hcloud-cloud-controller-manager:v{version}",
                    env,
                )
            ],
            replicas=int(_get(values, "replicaCount", 1)) if kind == "Deployment" else None,
            host_network=networking,
            tolerations=tolerations,
            service_account="hcloud-cloud-controller-manager",
            priority="system-cluster-critical",
        ),
    ]


def _csi(version: str, values: Obj) -> list[Obj]:
    secret = str(_get(values, "controller.hcloudToken.existingSecret.name", "hcloud"))
    key = str(_get(values, "controller.hcloudToken.existingSecret.key", "token"))
    image = f"docker.io/hetznercloud/hcloud-csi-driver:v{version}"
    env = [_secret_env("HCLOUD_TOKEN", secret, key)]
    # controller.volumeExtraLabels -> HCLOUD_VOLUME_EXTRA_LABELS "k=v,..." (chart >= 2.15,
    # templates/controller/deployment.yaml).
    extra = _get(values, "controller.volumeExtraLabels", {}) or {}
    if extra:
        pairs = ",".join(f"{k}={v}" for k, v in sorted(extra.items()))
        env.append({"name": "HCLOUD_VOLUME_EXTRA_LABELS", "value": pairs})
    storage_classes = _get(
        values,
        "storageClasses",
        [{"name": "hcloud-volumes", "defaultStorageClass": True, "reclaimPolicy": "Delete"}],
    )
    return [
        _sa("hcloud-csi-controller"),
        _workload(
            "Deployment",
            "hcloud-csi-controller",
            {"app.kubernetes.io/name": "hcloud-csi", "app.kubernetes.io/component": "controller"},
            [_container("hcloud-csi-driver", image, env)],
            replicas=int(_get(values, "controller.replicaCount", 1)),
            service_account="hcloud-csi-controller",
            priority=_get(values, "controller.priorityClassName", "") or None,
        ),
        _workload(
            "DaemonSet",
            "hcloud-csi-node",
            {"app.kubernetes.io/name": "hcloud-csi", "app.kubernetes.io/component": "node"},
            [_container("hcloud-csi-driver", image)],
            tolerations=[
                {"effect": "NoExecute", "operator": "Exists"},
                {"effect": "NoSchedule", "operator": "Exists"},
                {"key": "CriticalAddonsOnly", "operator": "Exists"},
            ],
            priority=_get(values, "node.priorityClassName", "") or None,
        ),
        *(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": sc.get("name", "hcloud-volumes"),
                    "annotations": {
                        "storageclass.kubernetes.io/is-default-class": str(
                            bool(sc.get("defaultStorageClass", False))
                        ).lower()
                    },
                },
                "provisioner": "csi.hetzner.cloud",
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": True,
                # The chart quotes the entry's value, "" when it has none; the API server
                # refuses that, as it does on a real cluster.
                "reclaimPolicy": sc.get("reclaimPolicy", ""),
            }
            for sc in storage_classes
        ),
    ]


# The metrics-server release each chart ships (charts/metrics-server/CHANGELOG.md).
_METRICS_SERVER_APP = {"3.13.0": "0.8.0", "3.13.1": "0.8.1"}


def _metrics_server(version: str, values: Obj) -> list[Obj]:
    labels = {
        "app.kubernetes.io/name": "metrics-server",
        "app.kubernetes.io/instance": "metrics-server",
    }
    args = ["--secure-port=10250", "--cert-dir=/tmp", *(_get(values, "args", []) or [])]
    tag = _get(values, "image.tag", "").lstrip("v") or _METRICS_SERVER_APP.get(version, "0.8.1")
    return [
        _sa("metrics-server"),
        _workload(
            "Deployment",
            "metrics-server",
            labels,
            [
                _container(
                    "metrics-server",
                    f"registry.k8s.io/metrics-server/metrics-server:v{tag}",
                    args=args,
                    ports=[{"name": "https", "containerPort": 10250, "protocol": "TCP"}],
                )
            ],
            replicas=int(_get(values, "replicas", 1)),
            service_account="metrics-server",
            priority="system-cluster-critical",
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server"},
            "spec": {
                "selector": labels,
                "ports": [{"name": "https", "port": 443, "targetPort": "https"}],
            },
        },
    ]


@dataclass(frozen=True)
class Chart:
    name: str
    repos: tuple[str, ...]
    app: str
    # What ``helm upgrade --install`` without ``--version`` installs (the repo's newest).
    latest: str
    render: Callable[[str, Obj], list[Obj]]

    def serves(self, repo: str) -> bool:
        return repo.rstrip("/") in self.repos


_HETZNER = ("https://charts.hetzner.cloud",)
# The repositories' newest releases are the ones hk8s pins (checked on 2026-12-07).
_NEWEST = ADDON_CHARTS
CATALOG: dict[str, Chart] = {
    c.name: c
    for c in (
        Chart("cilium", ("https://helm.cilium.io",), "cilium", _NEWEST["cilium"].version, _cilium),
        Chart(
            "hcloud-cloud-controller-manager",
            _HETZNER,
            "hcloud-ccm",
            _NEWEST["hcloud_ccm"].version,
            _ccm,
        ),
        Chart("hcloud-csi", _HETZNER, "hcloud-csi", _NEWEST["hcloud_csi"].version, _csi),
        Chart(
            "metrics-server",
            ("https://kubernetes-sigs.github.io/metrics-server",),
            "metrics-server",
            _NEWEST["metrics_server"].version,
            _metrics_server,
        ),
    )
}
