"""Annotated field types: the validator that checks a value, plus what editors should know.

The ``json_schema_extra`` hints (enums, patterns) only shape ``hk8s config schema``, so an
editor can flag mistakes as you type; the validators remain the authority and give the hints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

from hk8s.config import _fields as f
from hk8s.config._constants import (
    LOCATION_ZONES,
    MAX_CLUSTER_NAME,
    MAX_POOL_NAME,
    NETWORK_ZONES,
)
from hk8s.config._versions import SUPPORTED_TALOS_MINORS

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "KUBERNETES_VERSION_SCHEMA",
    "NETWORK_ZONE_SCHEMA",
    "SERVER_TYPE_SCHEMA",
    "ChartVersion",
    "Cidr",
    "ClusterName",
    "ControlPlaneCount",
    "Extension",
    "KubernetesVersion",
    "LabelKey",
    "LabelValue",
    "LoadBalancerType",
    "Location",
    "NetworkZone",
    "PoolName",
    "Schematic",
    "ServerType",
    "Source",
    "TaintText",
    "TalosVersion",
    "Url",
    "derived_default",
]

_LABEL = f._LABEL.pattern
_TALOS_MINORS = "|".join(m.split(".")[1] for m in SUPPORTED_TALOS_MINORS)
_EFFECTS = "|".join(f._TAINT_EFFECTS)


def derived_default(**extra: Any) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra`` for a field whose default depends on other fields: the schema must
    not claim one fixed default (the description says how it is derived). pydantic cannot
    merge a callable with the type's own extras, so the type's hints are passed in here."""

    def adjust(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(extra)

    return adjust


def _schema(**extra: Any) -> Any:
    return Field(json_schema_extra=extra)


ControlPlaneCount = Annotated[
    int, AfterValidator(f.check_control_plane_count), _schema(enum=[1, 3, 5, 7, 9])
]
ClusterName = Annotated[
    str, AfterValidator(f.check_cluster_name), _schema(pattern=_LABEL, maxLength=MAX_CLUSTER_NAME)
]
PoolName = Annotated[
    str, AfterValidator(f.check_pool_name), _schema(pattern=_LABEL, maxLength=MAX_POOL_NAME)
]
Location = Annotated[str, AfterValidator(f.check_location), _schema(enum=list(LOCATION_ZONES))]
# Types whose fields have derived defaults: their schema hints are in the model's Field.
NETWORK_ZONE_SCHEMA: dict[str, Any] = {"enum": list(NETWORK_ZONES)}
SERVER_TYPE_SCHEMA: dict[str, Any] = {"pattern": f._SERVER_TYPE.pattern}
KUBERNETES_VERSION_SCHEMA: dict[str, Any] = {"pattern": r"^v?1\.\d+\.\d+$"}
NetworkZone = Annotated[str, AfterValidator(f.check_network_zone)]
ServerType = Annotated[str, AfterValidator(f.check_server_type)]
LoadBalancerType = Annotated[str, AfterValidator(f.check_lb_type), _schema(enum=list(f._LB_TYPES))]
LabelKey = Annotated[str, AfterValidator(f.check_label_key)]
LabelValue = Annotated[str, AfterValidator(f.check_label_value), _schema(maxLength=63)]
TaintText = Annotated[
    str, AfterValidator(f.check_taint), _schema(pattern=rf"^[^=:\s]+(=[^:\s]*)?:({_EFFECTS})$")
]
Cidr = Annotated[str, AfterValidator(f.check_cidr)]
Source = Annotated[str, AfterValidator(f.check_source)]
TalosVersion = Annotated[
    str,
    AfterValidator(f.check_talos_version),
    _schema(pattern=rf"^v?1\.({_TALOS_MINORS})\.\d+(-[0-9A-Za-z.-]+)?$"),
]
KubernetesVersion = Annotated[str, AfterValidator(f.check_kubernetes_version)]
ChartVersion = Annotated[
    str, AfterValidator(f.check_chart_version), _schema(pattern=f._CHART_VERSION.pattern)
]
Schematic = Annotated[str, AfterValidator(f.check_schematic), _schema(pattern=f._SCHEMATIC.pattern)]
Extension = Annotated[str, AfterValidator(f.check_extension), _schema(pattern=f._EXTENSION.pattern)]
Url = Annotated[str, AfterValidator(f.check_url), _schema(format="uri")]
