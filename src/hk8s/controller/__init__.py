"""Orchestration: observe by label -> diff -> plan (typed operations) -> apply -> wait.

Pure of I/O except through provider ports (``hk8s.providers.*.…Port``), so every piece is
testable with a fake. ``Reconciler`` drives ``Component``s (``InfraComponent`` today); the
``Executor`` runs a ``Plan`` with per-kind ``Handler``s and reports to a ``Reporter``.
"""

from __future__ import annotations

from hk8s.controller._executor import Executor, Handler, Results
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
    "Change",
    "Component",
    "DesiredInfra",
    "EventKind",
    "Executor",
    "Handler",
    "InfraComponent",
    "InfraHandlers",
    "InfraIntent",
    "LoadBalancerIntent",
    "NullReporter",
    "ObservedInfra",
    "Operation",
    "OperationType",
    "Plan",
    "PoolIntent",
    "ProgressEvent",
    "Reconciler",
    "RecordingReporter",
    "Reporter",
    "Results",
    "add_implied_dependencies",
    "build_plan",
    "check_adoptable",
    "cluster_labels",
    "desired_infra",
    "diff_infra",
    "execution_waves",
    "implied_dependencies",
    "infra_intent",
    "needs_public_ip",
    "observe_infra",
    "placement_group_names",
    "resolve_sources",
    "sort_operations",
]
