"""The simulated world's Kubernetes: the real control plane, and the machines' side around it.

``ControlPlane`` runs upstream etcd, kube-apiserver, kube-controller-manager and kube-scheduler
(built by ``make kube``) for one cluster on loopback, with the cluster's own PKI. Everything a
real cluster gets from its machines rather than from the control plane is played by the
simulator as an API client of that server. The cloud side of that, each with ``run()`` and
``stop()``: ``LoadBalancerController`` (the Hetzner CCM's LoadBalancer Services),
``CsiDriver`` (the Hetzner CSI driver's volumes), ``MetricsServer`` (metrics.k8s.io for
``kubectl top``), and ``ClusterNetwork`` (how the API server reaches simulated pods).
"""

from __future__ import annotations

from hk8s.sim.k8s._binaries import (
    BIN_ENV,
    KUBERNETES_RELEASE,
    Binaries,
    BinariesMissing,
    find_binaries,
)
from hk8s.sim.k8s._ccm_lb import LoadBalancerController
from hk8s.sim.k8s._client import ApiError, KubeClient, WatchExpired
from hk8s.sim.k8s._controlplane import ControlPlane, ControlPlaneFailed
from hk8s.sim.k8s._csi import CsiDriver
from hk8s.sim.k8s._egress import ClusterNetwork
from hk8s.sim.k8s._metrics import MetricsServer
from hk8s.sim.k8s._pki import ClusterSecrets, kubeconfig

__all__ = [
    "BIN_ENV",
    "KUBERNETES_RELEASE",
    "ApiError",
    "Binaries",
    "BinariesMissing",
    "ClusterNetwork",
    "ClusterSecrets",
    "ControlPlane",
    "ControlPlaneFailed",
    "CsiDriver",
    "KubeClient",
    "LoadBalancerController",
    "MetricsServer",
    "WatchExpired",
    "find_binaries",
    "kubeconfig",
]
