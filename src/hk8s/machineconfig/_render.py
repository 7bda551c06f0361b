"""Machine configs for one node: the v1alpha1 document, per-contract extra documents, patches.

User patches come last, ``talos.patches.all`` then the role's list, each checked on its own so
that an error names the patch (``talos.patches.worker[1]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from hk8s.errors import ConfigError, ConfigProblem
from hk8s.machineconfig._check import check_documents, check_types_kept
from hk8s.machineconfig._contract import Contract, contract_for
from hk8s.machineconfig._multidoc import multidoc_documents
from hk8s.machineconfig._patch import Document, PatchError, apply_patch
from hk8s.machineconfig._v1alpha1 import installer_image, v1alpha1_document

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from hk8s.config import ClusterConfig, NodePool
    from hk8s.pki import SecretsBundle

__all__ = [
    "apply_patches",
    "build_machine_config",
    "dump_documents",
    "render_machine_config",
]


def render_machine_config(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str] = (),
    schematic: str | None = None,
) -> str:
    """The machine config (YAML, possibly several documents) for one node of ``pool``.

    ``endpoint`` is the API load balancer's IP or the first control plane's; ``cert_sans`` are
    extra names/IPs for the Talos and Kubernetes API certs (e.g. the LB's public IP);
    ``schematic`` overrides the config's (needed when the config lists extensions).

    >>> text = render_machine_config(cfg, bundle, cfg.pool("cp"), endpoint="203.0.113.10",
    ...                              hostname="demo-cp-1")
    """
    docs = build_machine_config(
        cluster,
        secrets,
        pool,
        endpoint=endpoint,
        hostname=hostname,
        cert_sans=cert_sans,
        schematic=schematic,
    )
    return dump_documents(docs)


def build_machine_config(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str] = (),
    schematic: str | None = None,
) -> list[Document]:
    """The documents of :func:`render_machine_config`, patched, as plain data."""
    contract = contract_for(cluster.talos.version)
    if contract.multidoc:
        docs = multidoc_documents(
            cluster,
            secrets,
            pool,
            endpoint=endpoint,
            hostname=hostname,
            cert_sans=cert_sans,
            installer=installer_image(cluster, schematic),
        )
    else:
        docs = _legacy_documents(
            cluster,
            secrets,
            pool,
            contract,
            endpoint=endpoint,
            hostname=hostname,
            cert_sans=cert_sans,
            schematic=schematic,
        )
    patches = cluster.talos.patches
    role_patches = patches.control_plane if pool.role == "control-plane" else patches.worker
    role_key = "control_plane" if pool.role == "control-plane" else "worker"
    docs = apply_patches(docs, patches.all, source="talos.patches.all", contract=contract)
    return apply_patches(docs, role_patches, source=f"talos.patches.{role_key}", contract=contract)


def _legacy_documents(
    cluster: ClusterConfig,
    secrets: SecretsBundle,
    pool: NodePool,
    contract: Contract,
    *,
    endpoint: str,
    hostname: str,
    cert_sans: Sequence[str],
    schematic: str | None,
) -> list[Document]:
    """Talos 1.11-1.13: the v1alpha1 document, plus ``HostnameConfig`` from 1.12."""
    docs = [
        v1alpha1_document(
            cluster,
            secrets,
            pool,
            contract,
            endpoint=endpoint,
            hostname=hostname,
            cert_sans=cert_sans,
            installer=installer_image(cluster, schematic),
        )
    ]
    if contract.hostname_document:
        docs.append({"apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": hostname})
    return docs


def apply_patches(
    documents: list[Document],
    patches: Sequence[object],
    *,
    source: str,
    contract: Contract,
) -> list[Document]:
    """Apply ``patches`` in order; ``ConfigError`` names each failing patch by index.

    Every patch is checked on its own (a failing patch is skipped so that later ones are still
    checked), so one run reports every bad patch.
    """
    problems: list[ConfigProblem] = []
    machine_type = documents[0].get("machine", {}).get("type")
    for index, patch in enumerate(patches):
        where = f"{source}[{index}]"
        try:
            patched = apply_patch(documents, patch)
            check_documents(patched, contract, machine_type=machine_type)
            check_types_kept(documents[0], patched[0])
        except PatchError as exc:
            problems.append(ConfigProblem(path=where, message=str(exc), hint=_hint(exc)))
            continue
        documents = patched
    if problems:
        raise ConfigError("machine config patches", problems)
    return documents


def dump_documents(documents: Sequence[Mapping[str, Any]]) -> str:
    """YAML in talosctl's style (4-space indents, indented lists), ``---`` between documents."""
    return "---\n".join(
        yaml.dump(dict(doc), Dumper=_TalosDumper, sort_keys=False, indent=4, width=1 << 20)
        for doc in documents
    )


def _hint(exc: PatchError) -> str:
    if "expected" in exc.message:
        return "the patch must have the same shape as the machine config at that path"
    return "see https://www.talos.dev/latest/talos-guides/configuration/patching/"


class _TalosDumper(yaml.SafeDumper):
    """Indents list items under their key, as Go's yaml encoder (and talosctl) does."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Go writes the empty worker CA keys as "" rather than ''.
    style = '"' if value == "" else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TalosDumper.add_representer(str, _represent_str)
