"""The addon catalogue: upstream chart coordinates, hk8s' default values, what to wait for.

Chart, repo, release, namespace and the pinned default version live in
``hk8s.config.ADDON_CHARTS`` (the config's defaults and the simulator read them there); this
module adds what only the installer needs: the default Helm values derived from the cluster
config, and the workloads each chart creates, which ``create`` waits for.

User values from ``addons.<name>.values`` are deep-merged over the defaults, Helm-style: maps
merge key by key, anything else (lists included) replaces, and ``null`` removes a default: hk8s'
here, and the chart's in Helm, which receives the ``null`` (Helm's documented way to delete a
chart default, e.g. the CCM chart's ``env: {HCLOUD_TOKEN: null}`` for a token file).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from hk8s.config import HELM_IMAGE  # pinned with the charts, in hk8s.config._versions

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from hk8s.config import ClusterConfig

__all__ = [
    "ADDON_WORKLOADS",
    "HELM_IMAGE",
    "Workload",
    "addon_values",
    "addon_workloads",
    "default_values",
    "merge_values",
]

# Talos' KubePrism: a local API load balancer on every node (docs.siderolabs.com, "KubePrism";
# enabled by default since Talos 1.6, port 7445).
KUBEPRISM_HOST = "localhost"
KUBEPRISM_PORT = 7445


@dataclass(frozen=True)
class Workload:
    """A Deployment or DaemonSet an addon's chart creates, to wait for after the install."""

    kind: Literal["Deployment", "DaemonSet"]
    namespace: str
    name: str


# The names the charts give them for the release names in ADDON_CHARTS (the CCM chart names
# its workload after the chart, whatever the release); addon_workloads adjusts for values.
ADDON_WORKLOADS: dict[str, tuple[Workload, ...]] = {
    "cilium": (
        Workload("DaemonSet", "kube-system", "cilium"),
        Workload("Deployment", "kube-system", "cilium-operator"),
    ),
    "hcloud_ccm": (Workload("Deployment", "kube-system", "hcloud-cloud-controller-manager"),),
    "hcloud_csi": (
        Workload("Deployment", "kube-system", "hcloud-csi-controller"),
        Workload("DaemonSet", "kube-system", "hcloud-csi-node"),
    ),
    "metrics_server": (Workload("Deployment", "kube-system", "metrics-server"),),
}


def addon_workloads(addon: str, values: Mapping[str, Any]) -> tuple[Workload, ...]:
    """What ``create`` waits for once ``addon`` is installed with ``values``: ADDON_WORKLOADS,
    except that the CCM chart's ``kind: DaemonSet`` (its full.daemonset-values.yaml) makes a
    DaemonSet of the same name instead of the Deployment."""
    workloads = ADDON_WORKLOADS[addon]
    if addon == "hcloud_ccm" and values.get("kind") == "DaemonSet":
        return tuple(replace(w, kind="DaemonSet") for w in workloads)
    return workloads


def _node_count(cluster: ClusterConfig) -> int:
    return cluster.control_plane.count + sum(pool.count for pool in cluster.workers)


def _cilium(cluster: ClusterConfig) -> dict[str, Any]:
    # Values from Talos' "Deploy Cilium CNI" guide (docs.siderolabs.com): Kubernetes IPAM,
    # no kube-proxy (the machine configs disable it), the cgroup v2 mount Talos already has,
    # and no SYS_MODULE capability because Talos forbids loading kernel modules from pods.
    return {
        "ipam": {"mode": "kubernetes"},
        "kubeProxyReplacement": True,
        "k8sServiceHost": KUBEPRISM_HOST,
        "k8sServicePort": KUBEPRISM_PORT,
        "securityContext": {
            "capabilities": {
                "ciliumAgent": [
                    "CHOWN",
                    "KILL",
                    "NET_ADMIN",
                    "NET_RAW",
                    "IPC_LOCK",
                    "SYS_ADMIN",
                    "SYS_RESOURCE",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "SETGID",
                    "SETUID",
                ],
                "cleanCiliumState": ["NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"],
            }
        },
        "cgroup": {"autoMount": {"enabled": False}, "hostRoot": "/sys/fs/cgroup"},
        # The operator's two replicas repel each other: a one-node cluster runs one.
        "operator": {"replicas": 1 if _node_count(cluster) == 1 else 2},
    }


def _hcloud_ccm(cluster: ClusterConfig) -> dict[str, Any]:
    # hcloud-cloud-controller-manager chart: with networking enabled it reads the network id
    # from Secret hcloud key `network` and allocates routes for the pod CIDR.
    # Its load balancer controller needs a location for a Service without the
    # load-balancer.hetzner.cloud/location annotation, or it refuses ("neither ... nor ...
    # is set"): the chart's `env` map becomes the container's environment, and
    # HCLOUD_LOAD_BALANCERS_LOCATION is the cluster-wide default (hcloud-cloud-controller-manager
    # docs/reference/load_balancer_envs.md; mutually exclusive with ..._NETWORK_ZONE). The
    # cluster's own location keeps a plain `type: LoadBalancer` Service next to its nodes.
    return {
        "networking": {"enabled": True, "clusterCIDR": cluster.network.pod_cidr},
        "env": {"HCLOUD_LOAD_BALANCERS_LOCATION": {"value": str(cluster.location)}},
    }


def _hcloud_csi(cluster: ClusterConfig) -> dict[str, Any]:
    # The chart's defaults read the token from Secret hcloud key `token`. Every volume the
    # driver makes is labelled cluster=<name> (chart value controller.volumeExtraLabels, sets
    # HCLOUD_VOLUME_EXTRA_LABELS; hetznercloud/csi-driver docs/kubernetes/README.md "Volume
    # Labels", chart >= 2.15), so hk8s destroy finds leftover volumes by label even when no
    # claim or server ties them to the cluster any more.
    return {"controller": {"volumeExtraLabels": {"cluster": cluster.name}}}


def _metrics_server(cluster: ClusterConfig) -> dict[str, Any]:
    # Talos kubelets serve self-signed certificates unless kubelet serving-certificate
    # rotation plus an approver are set up (docs.siderolabs.com, "Deploying Metrics Server"),
    # so metrics-server skips verifying them, as that guide's simple variant does.
    return {"args": ["--kubelet-insecure-tls"]}


_DEFAULTS: dict[str, Callable[[ClusterConfig], dict[str, Any]]] = {
    "cilium": _cilium,
    "hcloud_ccm": _hcloud_ccm,
    "hcloud_csi": _hcloud_csi,
    "metrics_server": _metrics_server,
}


def default_values(cluster: ClusterConfig, addon: str) -> dict[str, Any]:
    """hk8s' values for ``addon`` (a key of ``ADDON_CHARTS``) before the user's."""
    return _DEFAULTS[addon](cluster)


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps merge recursively, other values replace, and ``None`` replaces
    too, so that it still reaches Helm and deletes the chart's default of the same key.

    >>> merge_values({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": None, "d": 3}, "l": [2]})
    {'a': {'b': 1, 'c': None, 'd': 3}, 'l': [2]}
    """
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def addon_values(cluster: ClusterConfig, addon: str) -> dict[str, Any]:
    """The values an addon is installed with: hk8s' defaults, then the user's on top."""
    user = cluster.addons.configured()[addon].values
    return merge_values(default_values(cluster, addon), user)
