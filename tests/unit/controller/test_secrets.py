"""The secrets bundle: made once for a new cluster, refused when it is not the cluster's."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pytest

from hk8s.controller import CLUSTER_ID_LABEL, cluster_id_label, ensure_secrets
from hk8s.errors import SecretsError
from hk8s.model.resources import Server
from hk8s.pki import write_secrets

if TYPE_CHECKING:
    from pathlib import Path

    from hk8s.pki import SecretsBundle


def server(cluster_id: str | None) -> Server:
    labels = {"cluster": "demo", "managed-by": "hk8s"}
    if cluster_id is not None:
        labels[CLUSTER_ID_LABEL] = cluster_id_label(cluster_id)
    return Server(1, "demo-cp-1", "running", "cx23", "fsn1", labels)


def test_new_cluster_generates_a_private_bundle_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    first = ensure_secrets(path, [], "demo")
    assert first.generated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ensure_secrets(path, [server(first.bundle.cluster_id)], "demo")
    assert not again.generated
    assert again.bundle.cluster_id == first.bundle.cluster_id


def test_existing_cluster_without_its_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    with pytest.raises(SecretsError, match=r"exists .* missing") as info:
        ensure_secrets(path, [server("whatever")], "demo")
    assert info.value.hint and "never" not in info.value.message
    assert not path.exists(), "no new PKI for a live cluster"


def test_bundle_of_another_cluster_is_refused(tmp_path: Path, bundle: SecretsBundle) -> None:
    path = tmp_path / "secrets.yaml"
    write_secrets(path, bundle)
    with pytest.raises(SecretsError, match="another cluster"):
        ensure_secrets(path, [server("the-real-cluster-id")], "demo")


def test_servers_without_the_label_do_not_decide(tmp_path: Path, bundle: SecretsBundle) -> None:
    path = tmp_path / "secrets.yaml"
    write_secrets(path, bundle)
    assert not ensure_secrets(path, [server(None)], "demo").generated
