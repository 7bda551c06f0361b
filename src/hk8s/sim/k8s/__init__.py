"""The simulated world's Kubernetes: the real control plane, and the machines' side around it.

``ControlPlane`` runs upstream etcd, kube-apiserver, kube-controller-manager and kube-scheduler
(built by ``make kube``) for one cluster on loopback, with the cluster's own PKI. Everything a
real cluster gets from its machines rather than from the control plane is played by the
simulator as an API client of that server.
"""

from __future__ import annotations

from hk8s.sim.k8s._binaries import (
    BIN_ENV,
    KUBERNETES_RELEASE,
    Binaries,
    BinariesMissing,
    find_binaries,
)
from hk8s.sim.k8s._client import ApiError, KubeClient, WatchExpired
from hk8s.sim.k8s._controlplane import ControlPlane, ControlPlaneFailed
from hk8s.sim.k8s._pki import ClusterSecrets, kubeconfig

__all__ = [
    "BIN_ENV",
    "KUBERNETES_RELEASE",
    "ApiError",
    "Binaries",
    "BinariesMissing",
    "ClusterSecrets",
    "ControlPlane",
    "ControlPlaneFailed",
    "KubeClient",
    "WatchExpired",
    "find_binaries",
    "kubeconfig",
]
