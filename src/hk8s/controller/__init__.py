"""Orchestration: observe by label -> diff -> plan (typed operations) -> apply -> wait.

Pure of I/O except through provider ports (``hk8s.providers.*.…Port``), so every piece is
testable with a fake. ``Reconciler`` drives ``Component``s (``InfraComponent`` today); the
``Executor`` runs a ``Plan`` with per-kind ``Handler``s and reports to a ``Reporter``.
"""

from __future__ import annotations

from hk8s.controller._addons import enabled_addons, install_addons
from hk8s.controller._catalogue import (
    Verdict,
    alternatives,
    judge_lb_type,
    judge_server_type,
    successor,
)
from hk8s.controller._catalogue_check import (
    CatalogueReport,
    Purpose,
    check_catalogue,
    judge_config,
    read_catalogue,
)
from hk8s.controller._create import (
    CreateOptions,
    CreatePorts,
    CreateResult,
    check_endpoint_kept,
    create_cluster,
    observe_endpoint,
)
from hk8s.controller._create_access import ClusterAccess, observe_access
from hk8s.controller._create_etcd import bootstrap_etcd, fetch_kubeconfig, wait_etcd_members
from hk8s.controller._create_images import ClusterImages, cluster_images
from hk8s.controller._create_secrets import (
    ClusterSecrets,
    check_secrets_owner,
    ensure_secrets,
    load_cluster_secrets,
)
from hk8s.controller._create_wait import Waiter
from hk8s.controller._destroy import (
    LOCAL_FILES,
    Destroyer,
    DestroyPlan,
    DestroyReport,
    local_files,
    purge_local_files,
)
from hk8s.controller._destroy_apply import DestroyHalt, DestroyHandlers
from hk8s.controller._destroy_k8s import (
    InClusterObjects,
    clean_in_cluster,
    kubeconfig_cluster,
    observe_in_cluster,
)
from hk8s.controller._destroy_observe import KubeFacts, observe_cluster
from hk8s.controller._destroy_plan import (
    CCM_SERVICE_UID_LABEL,
    DESTROY_ORDER,
    KeptImage,
    ObservedCluster,
    ccm_load_balancer_owned,
    csi_volume_owned,
    owner_selector,
    ownership_problem,
    plan_destroy,
    snapshots_to_delete,
)
from hk8s.controller._doctor import CHECKS as DOCTOR_CHECKS
from hk8s.controller._doctor import DoctorFiles, DoctorReport, DoctorTalosPort, diagnose
from hk8s.controller._doctor_checks import Problem
from hk8s.controller._etcd_restore import (
    EtcdRestorePort,
    RestoreResult,
    restore_etcd,
    verify_snapshot,
)
from hk8s.controller._etcd_snapshot import (
    EtcdSnapshotPort,
    SnapshotResult,
    pick_snapshot_source,
    take_snapshot,
)
from hk8s.controller._executor import Executor, Handler, Results
from hk8s.controller._health import CONTROL_PLANE_PODS, HealthCheck, check_health, wait_healthy
from hk8s.controller._image_build import BuildSite, SnapshotBuilder
from hk8s.controller._image_disk import pick_boot_disk
from hk8s.controller._image_ensure import ImageBuilds, ObservedImages, ensure_images
from hk8s.controller._image_errors import (
    BootDiskNotFoundError,
    ImageDownloadError,
    ImageVerifyError,
    RescueUnreachableError,
)
from hk8s.controller._image_schematic import (
    FactoryClient,
    HttpFactoryClient,
    SchematicResolver,
    default_cache_file,
)
from hk8s.controller._image_spec import (
    SNAPSHOT_SELECTOR,
    Arch,
    ImageTarget,
    build_site,
    image_url,
)
from hk8s.controller._infra import (
    LB_FIREWALL_WARNING,
    InfraComponent,
    infra_intent,
    needs_public_ip,
)
from hk8s.controller._infra_apply import InfraHandlers, check_adoptable
from hk8s.controller._infra_desired import (
    PLACEMENT_GROUP_SIZE,
    DesiredInfra,
    InfraIntent,
    LoadBalancerIntent,
    PoolIntent,
    cluster_labels,
    desired_infra,
    placement_group_names,
    resolve_sources,
)
from hk8s.controller._infra_diff import ObservedInfra, diff_infra, observe_infra
from hk8s.controller._node_ops import NodeAction, NodeOps, quorum_refusal
from hk8s.controller._nodes import (
    ClusterEndpoint,
    Node,
    cluster_endpoint,
    config_hash,
    configure_nodes,
    pair_nodes,
    render_node_configs,
)
from hk8s.controller._order import (
    REQUIRES,
    add_implied_dependencies,
    build_plan,
    execution_waves,
    implied_dependencies,
    sort_operations,
)
from hk8s.controller._plan import KIND_ORDER, Change, Operation, OperationType, Plan
from hk8s.controller._reconcile import Component, Reconciler
from hk8s.controller._report import (
    EventKind,
    NullReporter,
    ProgressEvent,
    RecordingReporter,
    Reporter,
)
from hk8s.controller._scale import NodeRemover, quorum_after_removal, split_removals
from hk8s.controller._servers import (
    CLUSTER_ID_LABEL,
    CONFIG_HASH_LABEL,
    DesiredServer,
    cluster_id_label,
    desired_servers,
    diff_servers,
    removal_order,
    server_index,
    server_selector,
)
from hk8s.controller._servers_component import ServerRemover, ServersComponent
from hk8s.controller._upgrade import (
    UpgradeOptions,
    UpgradePorts,
    UpgradeResult,
    roll_out,
    upgrade_cluster,
)
from hk8s.controller._upgrade_node import (
    UPGRADING_ANNOTATION,
    NodeUpgrader,
    cordon_object,
    static_pod_versions,
)
from hk8s.controller._upgrade_plan import (
    NodeStep,
    NodeVersions,
    UpgradePlan,
    check_kubernetes_path,
    check_talos_path,
    check_talos_supports,
    plan_upgrade,
    upgrade_order,
)

__all__ = [
    "CCM_SERVICE_UID_LABEL",
    "CLUSTER_ID_LABEL",
    "CONFIG_HASH_LABEL",
    "CONTROL_PLANE_PODS",
    "DESTROY_ORDER",
    "DOCTOR_CHECKS",
    "KIND_ORDER",
    "LB_FIREWALL_WARNING",
    "LOCAL_FILES",
    "PLACEMENT_GROUP_SIZE",
    "REQUIRES",
    "SNAPSHOT_SELECTOR",
    "UPGRADING_ANNOTATION",
    "Arch",
    "BootDiskNotFoundError",
    "BuildSite",
    "CatalogueReport",
    "Change",
    "ClusterAccess",
    "ClusterEndpoint",
    "ClusterImages",
    "ClusterSecrets",
    "Component",
    "CreateOptions",
    "CreatePorts",
    "CreateResult",
    "DesiredInfra",
    "DesiredServer",
    "DestroyHalt",
    "DestroyHandlers",
    "DestroyPlan",
    "DestroyReport",
    "Destroyer",
    "DoctorFiles",
    "DoctorReport",
    "DoctorTalosPort",
    "EtcdRestorePort",
    "EtcdSnapshotPort",
    "EventKind",
    "Executor",
    "FactoryClient",
    "Handler",
    "HealthCheck",
    "HttpFactoryClient",
    "ImageBuilds",
    "ImageDownloadError",
    "ImageTarget",
    "ImageVerifyError",
    "InClusterObjects",
    "InfraComponent",
    "InfraHandlers",
    "InfraIntent",
    "KeptImage",
    "KubeFacts",
    "LoadBalancerIntent",
    "Node",
    "NodeAction",
    "NodeOps",
    "NodeRemover",
    "NodeStep",
    "NodeUpgrader",
    "NodeVersions",
    "NullReporter",
    "ObservedCluster",
    "ObservedImages",
    "ObservedInfra",
    "Operation",
    "OperationType",
    "Plan",
    "PoolIntent",
    "Problem",
    "ProgressEvent",
    "Purpose",
    "Reconciler",
    "RecordingReporter",
    "Reporter",
    "RescueUnreachableError",
    "RestoreResult",
    "Results",
    "SchematicResolver",
    "ServerRemover",
    "ServersComponent",
    "SnapshotBuilder",
    "SnapshotResult",
    "UpgradeOptions",
    "UpgradePlan",
    "UpgradePorts",
    "UpgradeResult",
    "Verdict",
    "Waiter",
    "add_implied_dependencies",
    "alternatives",
    "bootstrap_etcd",
    "build_plan",
    "build_site",
    "ccm_load_balancer_owned",
    "check_adoptable",
    "check_catalogue",
    "check_endpoint_kept",
    "check_health",
    "check_kubernetes_path",
    "check_secrets_owner",
    "check_talos_path",
    "check_talos_supports",
    "clean_in_cluster",
    "cluster_endpoint",
    "cluster_id_label",
    "cluster_images",
    "cluster_labels",
    "config_hash",
    "configure_nodes",
    "cordon_object",
    "create_cluster",
    "csi_volume_owned",
    "default_cache_file",
    "desired_infra",
    "desired_servers",
    "diagnose",
    "diff_infra",
    "diff_servers",
    "enabled_addons",
    "ensure_images",
    "ensure_secrets",
    "execution_waves",
    "fetch_kubeconfig",
    "image_url",
    "implied_dependencies",
    "infra_intent",
    "install_addons",
    "judge_config",
    "judge_lb_type",
    "judge_server_type",
    "kubeconfig_cluster",
    "load_cluster_secrets",
    "local_files",
    "needs_public_ip",
    "observe_access",
    "observe_cluster",
    "observe_endpoint",
    "observe_in_cluster",
    "observe_infra",
    "owner_selector",
    "ownership_problem",
    "pair_nodes",
    "pick_boot_disk",
    "pick_snapshot_source",
    "placement_group_names",
    "plan_destroy",
    "plan_upgrade",
    "purge_local_files",
    "quorum_after_removal",
    "quorum_refusal",
    "read_catalogue",
    "removal_order",
    "render_node_configs",
    "resolve_sources",
    "restore_etcd",
    "roll_out",
    "server_index",
    "server_selector",
    "snapshots_to_delete",
    "sort_operations",
    "split_removals",
    "static_pod_versions",
    "successor",
    "take_snapshot",
    "upgrade_cluster",
    "upgrade_order",
    "verify_snapshot",
    "wait_etcd_members",
    "wait_healthy",
]
