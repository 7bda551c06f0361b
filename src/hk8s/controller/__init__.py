"""Orchestration: observe by label -> diff -> plan (typed operations) -> apply -> wait.

Pure of I/O except through provider ports (``hk8s.providers.*.…Port``), so every piece is
testable with a fake. ``Reconciler`` drives ``Component``s (``InfraComponent`` today); the
``Executor`` runs a ``Plan`` with per-kind ``Handler``s and reports to a ``Reporter``.
"""

from __future__ import annotations

from hk8s.controller._executor import Executor, Handler, Results
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
    build_server_type,
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

__all__ = [
    "KIND_ORDER",
    "LB_FIREWALL_WARNING",
    "PLACEMENT_GROUP_SIZE",
    "REQUIRES",
    "SNAPSHOT_SELECTOR",
    "Arch",
    "BootDiskNotFoundError",
    "BuildSite",
    "Change",
    "Component",
    "DesiredInfra",
    "EventKind",
    "Executor",
    "FactoryClient",
    "Handler",
    "HttpFactoryClient",
    "ImageBuilds",
    "ImageDownloadError",
    "ImageTarget",
    "ImageVerifyError",
    "InfraComponent",
    "InfraHandlers",
    "InfraIntent",
    "LoadBalancerIntent",
    "NullReporter",
    "ObservedImages",
    "ObservedInfra",
    "Operation",
    "OperationType",
    "Plan",
    "PoolIntent",
    "ProgressEvent",
    "Reconciler",
    "RecordingReporter",
    "Reporter",
    "RescueUnreachableError",
    "Results",
    "SchematicResolver",
    "SnapshotBuilder",
    "add_implied_dependencies",
    "build_plan",
    "build_server_type",
    "check_adoptable",
    "cluster_labels",
    "default_cache_file",
    "desired_infra",
    "diff_infra",
    "ensure_images",
    "execution_waves",
    "image_url",
    "implied_dependencies",
    "infra_intent",
    "needs_public_ip",
    "observe_infra",
    "pick_boot_disk",
    "placement_group_names",
    "resolve_sources",
    "sort_operations",
]
