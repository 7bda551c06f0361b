"""Kubernetes: the cluster API port and hk8s' addon manifests (the only user of kubernetes).

Usage::

    kube = KubeClient.from_kubeconfig(path_or_dict, clock=clock, timing=timing)
    # or KubeClient.from_kubeconfig_text(yaml_text, ...) for the kubeconfig Talos returns
    await kube.wait_api_ready()
    await kube.apply(render_base_manifests(cluster, token=token, network_id=network.id))
    for addon in cluster.addons.configured():            # install order
        install = render_addon_manifests(cluster, addon)
        await kube.apply(install.objects)
        await kube.wait_job(install.job_namespace, install.job_name)
        for w in install.workloads:
            await kube.wait_rollout(w.kind, w.namespace, w.name)
"""

from __future__ import annotations

from hk8s.providers.k8s._addons import (
    ADDON_WORKLOADS,
    HELM_IMAGE,
    Workload,
    addon_values,
    default_values,
    merge_values,
)
from hk8s.providers.k8s._backup import (
    BACKUP_CREDENTIALS_SECRET,
    BACKUP_CRONJOB,
    BACKUP_TALOS_ACCOUNT,
    BackupManifests,
    backup_prefix,
    render_backup_manifests,
)
from hk8s.providers.k8s._cluster import KubeClient
from hk8s.providers.k8s._port import KubernetesAPI
from hk8s.providers.k8s._releases import DEPLOYED_RELEASES, deployed_chart_versions
from hk8s.providers.k8s._render import (
    AddonManifests,
    RedactedStr,
    manifests_dir,
    render_addon_manifests,
    render_base_manifests,
)
from hk8s.providers.k8s._types import (
    NOT_READY_TAINTS,
    JobFailedError,
    KubeNode,
    NodeTaint,
    ObjectRef,
)

__all__ = [
    "ADDON_WORKLOADS",
    "BACKUP_CREDENTIALS_SECRET",
    "BACKUP_CRONJOB",
    "BACKUP_TALOS_ACCOUNT",
    "DEPLOYED_RELEASES",
    "HELM_IMAGE",
    "NOT_READY_TAINTS",
    "AddonManifests",
    "BackupManifests",
    "JobFailedError",
    "KubeClient",
    "KubeNode",
    "KubernetesAPI",
    "NodeTaint",
    "ObjectRef",
    "RedactedStr",
    "Workload",
    "addon_values",
    "backup_prefix",
    "default_values",
    "deployed_chart_versions",
    "manifests_dir",
    "merge_values",
    "render_addon_manifests",
    "render_backup_manifests",
    "render_base_manifests",
]
