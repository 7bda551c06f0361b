"""Validators for single values of cluster.yaml: names, labels, taints, CIDRs, versions.

Each raises ``invalid(message, hint)``, a pydantic error that carries the hint through to the
``ConfigProblem`` the loader builds, so the user reads what is wrong and what to write instead.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

from hk8s.config._constants import (
    LOCATION_ZONES,
    MAX_CLUSTER_NAME,
    MAX_POOL_NAME,
    NETWORK_ZONES,
    RESERVED_POOL_NAMES,
)
from hk8s.config._versions import SUPPORTED_TALOS_MINORS

__all__ = ["Taint", "invalid", "parse_taint"]

_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Kubernetes label syntax (k8s.io/apimachinery validation.IsQualifiedName / IsValidLabelValue).
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TAINT = re.compile(r"^(?P<key>[^=:\s]+)(=(?P<value>[^:\s]*))?:(?P<effect>[A-Za-z]+)$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TALOS_VERSION = re.compile(r"^v?1\.(?P<minor>\d+)\.(?P<patch>\d+)(?P<pre>-[0-9A-Za-z.-]+)?$")
_K8S_VERSION = re.compile(r"^v?1\.(?P<minor>\d+)\.(?P<patch>\d+)$")
_CHART_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
_SCHEMATIC = re.compile(r"^[0-9a-f]{64}$")
_EXTENSION = re.compile(r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*$")
_SERVER_TYPE = re.compile(r"^[a-z]+[0-9]+[a-z0-9-]*$")
_LB_TYPES = ("lb11", "lb21", "lb31")


def invalid(message: str, hint: str | None = None) -> PydanticCustomError:
    """A validation error whose ``ctx`` carries a hint for the user."""
    return PydanticCustomError("hk8s_invalid", "{message}", {"message": message, "hint": hint})


def did_you_mean(value: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """``"did you mean 'fsn1'?"`` when one of ``choices`` is close to ``value``."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _suggest_label(value: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
    return re.sub(r"^[^a-z]+", "", cleaned) or "my-cluster"


def cluster_name_problem(value: str) -> tuple[str, str | None] | None:
    """What is wrong with ``value`` as a cluster name (message, hint), or None.

    For names that arrive outside cluster.yaml (``destroy --name``).
    """
    try:
        check_cluster_name(value)
    except PydanticCustomError as exc:
        context = exc.context or {}
        return str(context.get("message")), context.get("hint")
    return None


def check_cluster_name(value: str) -> str:
    # Servers are named "<cluster>-<pool>-<n>"; Hetzner server names and Kubernetes node names
    # must be RFC 1123 labels, so the prefix must be one too.
    if not _LABEL.match(value):
        raise invalid(
            f"{value!r} is not a valid cluster name: use lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'",
            f"for example {_suggest_label(value)!r}",
        )
    if len(value) > MAX_CLUSTER_NAME:
        raise invalid(
            f"cluster name is {len(value)} characters long, the limit is {MAX_CLUSTER_NAME}",
            "server names '<cluster>-<pool>-<n>' must fit in 63 characters; shorten the name",
        )
    return value


def check_pool_name(value: str) -> str:
    if not _LABEL.match(value):
        raise invalid(
            f"{value!r} is not a valid pool name: use lowercase letters, digits and '-', "
            "starting with a letter",
            f"for example {_suggest_label(value)!r}",
        )
    if len(value) > MAX_POOL_NAME:
        raise invalid(
            f"pool name is {len(value)} characters long, the limit is {MAX_POOL_NAME}",
            "the pool name is part of every server and placement group name",
        )
    if value in RESERVED_POOL_NAMES:
        raise invalid(
            f"pool name {value!r} is reserved for the control plane",
            "pick another name, e.g. 'workers'",
        )
    return value


def check_control_plane_count(value: int) -> int:
    if value % 2 == 0:
        raise invalid(
            f"control plane count {value} is even",
            f"etcd needs an odd number of members for a quorum: use {value - 1} or {value + 1}",
        )
    return value


def check_location(value: str) -> str:
    if value not in LOCATION_ZONES:
        raise invalid(
            f"unknown Hetzner location {value!r}",
            did_you_mean(value, tuple(LOCATION_ZONES)) or f"one of: {', '.join(LOCATION_ZONES)}",
        )
    return value


def check_network_zone(value: str) -> str:
    if value not in NETWORK_ZONES:
        raise invalid(
            f"unknown Hetzner network zone {value!r}",
            did_you_mean(value, NETWORK_ZONES) or f"one of: {', '.join(NETWORK_ZONES)}",
        )
    return value


def check_server_type(value: str) -> str:
    if not _SERVER_TYPE.match(value):
        raise invalid(
            f"{value!r} is not a Hetzner server type name",
            "for example cx23, cpx32, cax21 or ccx23 (see `hcloud server-type list`)",
        )
    return value


def check_lb_type(value: str) -> str:
    if value not in _LB_TYPES:
        raise invalid(f"unknown load balancer type {value!r}", f"one of: {', '.join(_LB_TYPES)}")
    return value


def check_label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if not _QUALIFIED_NAME.match(name) or len(name) > 63 or (prefix and len(prefix) > 253):
        raise invalid(
            f"{value!r} is not a valid Kubernetes label key",
            "keys are [prefix/]name; name is up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends",
        )
    if prefix and not _DNS_SUBDOMAIN.match(prefix):
        raise invalid(
            f"label key prefix {prefix!r} is not a DNS subdomain",
            "use lowercase letters, digits, '-' and '.', e.g. example.com/tier",
        )
    # The kubelet may only set its own labels under kubernetes.io / k8s.io in the
    # node.kubernetes.io and kubelet.kubernetes.io namespaces (NodeRestriction admission,
    # https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#noderestriction).
    if prefix.endswith(("kubernetes.io", "k8s.io")) and not prefix.endswith(
        ("node.kubernetes.io", "kubelet.kubernetes.io")
    ):
        raise invalid(
            f"nodes cannot label themselves with {value!r}",
            "labels under kubernetes.io / k8s.io are reserved; use node.kubernetes.io/... "
            "or your own prefix",
        )
    return value


def check_label_value(value: str) -> str:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.match(value)):
        raise invalid(
            f"{value!r} is not a valid Kubernetes label value",
            "up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends (or empty)",
        )
    return value


class Taint(NamedTuple):
    """A node taint, as Kubernetes' ``kubectl taint`` writes it: ``key[=value]:Effect``."""

    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        return (
            f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"
        )


def parse_taint(text: str) -> Taint:
    """``"dedicated=gpu:NoSchedule"`` -> ``Taint("dedicated", "gpu", "NoSchedule")``."""
    match = _TAINT.match(text)
    if not match:
        raise invalid(
            f"{text!r} is not a taint",
            "write key=value:Effect or key:Effect, e.g. dedicated=gpu:NoSchedule",
        )
    effect = match["effect"]
    if effect not in _TAINT_EFFECTS:
        raise invalid(
            f"unknown taint effect {effect!r}",
            did_you_mean(effect, _TAINT_EFFECTS) or f"one of: {', '.join(_TAINT_EFFECTS)}",
        )
    check_label_key(match["key"])
    check_label_value(match["value"] or "")
    return Taint(match["key"], match["value"] or "", effect)


def check_taint(value: str) -> str:
    return str(parse_taint(value))


def check_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid(
            f"{value!r} is not a CIDR", "write it as address/prefix, e.g. 10.0.0.0/16"
        ) from None
    if network.version != 4:
        raise invalid(f"{value!r} is not an IPv4 CIDR", "Hetzner networks are IPv4 only")
    if str(network) != value:
        raise invalid(f"{value!r} has host bits set", f"use the network address: {str(network)!r}")
    return value


def check_source(value: str) -> str:
    """A firewall source: ``current`` (the operator's IP) or an IPv4/IPv6 CIDR."""
    if value == "current":
        return value
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid(
            f"{value!r} is neither 'current' nor a CIDR",
            "use 'current' for your own IP, or e.g. 203.0.113.0/24 or 2001:db8::/32",
        ) from None
    if "/" in value and str(network) != value:
        raise invalid(f"{value!r} has host bits set", f"use {str(network)!r}")
    return str(network)


def check_talos_version(value: str) -> str:
    match = _TALOS_VERSION.match(value)
    supported = ", ".join(f"v{m}.x" for m in SUPPORTED_TALOS_MINORS)
    if not match:
        raise invalid(f"{value!r} is not a Talos version", f"write e.g. v1.12.0 ({supported})")
    if f"1.{match['minor']}" not in SUPPORTED_TALOS_MINORS:
        raise invalid(f"Talos {value} is not supported", f"supported: {supported}")
    return value if value.startswith("v") else f"v{value}"


def check_kubernetes_version(value: str) -> str:
    if not _K8S_VERSION.match(value):
        raise invalid(f"{value!r} is not a Kubernetes version", "write e.g. 1.34.1")
    return value.removeprefix("v")


def check_chart_version(value: str) -> str:
    if not _CHART_VERSION.match(value):
        raise invalid(f"{value!r} is not a chart version", "write a pinned version, e.g. 1.18.4")
    return value


def check_schematic(value: str) -> str:
    if not _SCHEMATIC.match(value):
        raise invalid(
            f"{value!r} is not an Image Factory schematic id",
            "a schematic id is 64 lowercase hex characters, as printed by factory.talos.dev",
        )
    return value


def check_extension(value: str) -> str:
    if not _EXTENSION.match(value):
        raise invalid(
            f"{value!r} is not a Talos system extension name",
            "write <org>/<name>, e.g. siderolabs/qemu-guest-agent",
        )
    return value


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise invalid(f"{value!r} is not an http(s) URL", "e.g. https://factory.talos.dev")
    return value.rstrip("/")
