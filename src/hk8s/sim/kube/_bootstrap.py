"""What a freshly bootstrapped Talos cluster's API already holds before any node joins.

kube-apiserver creates the system namespaces, the ``kubernetes`` Service and the default RBAC
roles; Talos' bootstrap manifests add CoreDNS (Deployment + ``kube-dns`` Service). kube-proxy
is not deployed: hk8s disables it for Cilium (``cluster.proxy.disabled``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hk8s.sim.kube import _resources as res

if TYPE_CHECKING:
    from hk8s.sim.kube._resources import ResourceType

__all__ = ["bootstrap_objects"]

Obj = dict[str, Any]
_RBAC = "rbac.authorization.k8s.io/v1"


def _cluster_role(name: str, verbs: list[str]) -> Obj:
    return {
        "apiVersion": _RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": verbs},
            *([{"nonResourceURLs": ["*"], "verbs": ["*"]}] if name == "cluster-admin" else []),
        ],
    }


def bootstrap_objects(kubernetes_version: str) -> list[tuple[ResourceType, Obj]]:
    dns_labels = {"k8s-app": "kube-dns"}
    objs: list[Obj] = [
        *(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
            for n in ("default", "kube-system", "kube-public", "kube-node-lease")
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        },
        _cluster_role("cluster-admin", ["*"]),
        _cluster_role("admin", ["*"]),
        _cluster_role("edit", ["create", "delete", "get", "list", "patch", "update", "watch"]),
        _cluster_role("view", ["get", "list", "watch"]),
        {
            "apiVersion": _RBAC,
            "kind": "ClusterRoleBinding",
            "metadata": {
                "name": "cluster-admin",
                "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {
                "Corefile": ".:53 {\n    errors\n    health\n    ready\n"
                "    kubernetes cluster.local in-addr.arpa ip6.arpa\n"
                "    forward . /etc/resolv.conf\n    cache 30\n}\n"
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dns_labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": dns_labels},
                "template": {
                    "metadata": {"labels": dns_labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "tolerations": [
                            {
                                "key": "node-role.kubernetes.io/control-plane",
                                "operator": "Exists",
                                "effect": "NoSchedule",
                            },
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        ],
                        "containers": [
                            {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.3"}
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": dns_labels},
            "spec": {
                "clusterIP": "10.96.0.10",
                "selector": dns_labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            },
        },
    ]
    del kubernetes_version  # every version bootstraps the same objects here
    return [(res.by_kind(o["apiVersion"], o["kind"]), o) for o in objs]
