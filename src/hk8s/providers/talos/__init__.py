"""The Talos API provider: an async gRPC client (grpclib) and the port the controller uses.

>>> nodes = TalosNodes(TalosCredentials(ca=ca_pem, crt=crt_pem, key=key_pem), timing=timing)
>>> await nodes.apply_config("10.0.1.2", config, ApplyMode.AUTO, maintenance=True)
>>> await nodes.bootstrap("10.0.1.2")            # BootstrapOutcome.STARTED or ALREADY_BOOTSTRAPPED

``TalosClient`` exposes the whole subset of the API hk8s speaks (see ``protos/``), with
talosctl's endpoints/nodes targeting and one ``NodeResult`` per node.
"""

from __future__ import annotations

from hk8s.providers.talos._client import TalosClient
from hk8s.providers.talos._errors import MaintenanceModeError
from hk8s.providers.talos._port import TalosNodeAPI, TalosNodes
from hk8s.providers.talos._tls import TalosCredentials
from hk8s.providers.talos._transport import DEFAULT_PORT, Endpoint
from hk8s.providers.talos._types import (
    ApplyMode,
    ApplyResult,
    BootstrapOutcome,
    Disk,
    EtcdMember,
    EtcdMemberStatus,
    NodeResult,
    RebootMode,
    ResetWipeMode,
    ResourceEvent,
    ServiceStatus,
    TalosEvent,
    TalosResource,
    VersionInfo,
    raise_node_errors,
)

__all__ = [
    "DEFAULT_PORT",
    "ApplyMode",
    "ApplyResult",
    "BootstrapOutcome",
    "Disk",
    "Endpoint",
    "EtcdMember",
    "EtcdMemberStatus",
    "MaintenanceModeError",
    "NodeResult",
    "RebootMode",
    "ResetWipeMode",
    "ResourceEvent",
    "ServiceStatus",
    "TalosClient",
    "TalosCredentials",
    "TalosEvent",
    "TalosNodeAPI",
    "TalosNodes",
    "TalosResource",
    "VersionInfo",
    "raise_node_errors",
]
