"""The secrets bundle of a cluster: made once, before the first server, never again.

Rules (design.md section 3, "Secrets bundle is the one local artefact"):

- no server of the cluster exists -> a new cluster: load ``secrets.yaml`` if it is there
  (e.g. made with ``talosctl gen secrets``), else generate one and write it (0600) *before*
  any server is created, so an interrupted first run still has it;
- servers exist -> the bundle must be there and must be theirs. Ownership is checked without
  touching the nodes: every server hk8s creates carries ``hk8s/cluster-id``, 16 hex digits of
  the SHA-256 of the bundle's cluster id (``cluster_id_label``). A bundle whose fingerprint
  differs belongs to another cluster (a different PKI would lock hk8s out of the nodes), so
  it is refused. Servers without the label (made by hand) are not evidence either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.controller._servers import CLUSTER_ID_LABEL, cluster_id_label
from hk8s.errors import SecretsError
from hk8s.pki import generate_secrets, load_secrets, write_secrets

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from hk8s.model.resources import Server
    from hk8s.pki import SecretsBundle

__all__ = ["ClusterSecrets", "check_secrets_owner", "ensure_secrets", "load_cluster_secrets"]


@dataclass(frozen=True)
class ClusterSecrets:
    bundle: SecretsBundle
    path: Path
    generated: bool


def check_secrets_owner(bundle: SecretsBundle, servers: Sequence[Server], path: Path) -> None:
    """``SecretsError`` if a server of the cluster was created for another bundle."""
    mine = cluster_id_label(bundle.cluster_id)
    others = sorted(s.name for s in servers if s.labels.get(CLUSTER_ID_LABEL) not in (None, mine))
    if others:
        raise SecretsError(
            f"secrets bundle {path} belongs to another cluster than the servers "
            f"{', '.join(others)} ({CLUSTER_ID_LABEL} differs)",
            hint="use the secrets.yaml this cluster was created with (--secrets PATH); "
            "hk8s never makes a new PKI for a cluster that exists",
        )


def load_cluster_secrets(path: Path, servers: Sequence[Server], cluster: str) -> SecretsBundle:
    """The bundle of an existing cluster, checked against its servers."""
    if not path.exists():
        raise SecretsError(
            f"cluster {cluster} exists ({len(servers)} server(s)) but its secrets bundle "
            f"{path} is missing",
            hint="restore the secrets.yaml this cluster was created with, or pass --secrets "
            "PATH; hk8s will not make a new PKI for a running cluster",
        )
    bundle = load_secrets(path)
    check_secrets_owner(bundle, servers, path)
    return bundle


def ensure_secrets(path: Path, servers: Sequence[Server], cluster: str) -> ClusterSecrets:
    """Load or (for a cluster that does not exist yet) generate and write the bundle."""
    if servers:
        return ClusterSecrets(load_cluster_secrets(path, servers, cluster), path, False)
    if path.exists():
        return ClusterSecrets(load_secrets(path), path, False)
    bundle = generate_secrets()
    write_secrets(path, bundle)
    return ClusterSecrets(bundle, path, True)
