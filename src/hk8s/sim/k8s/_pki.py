"""The files a Talos control plane gives its Kubernetes components, from its machine config.

Talos writes the cluster CA, the front-proxy (aggregator) CA and the service-account key from
the machine config into ``/system/secrets/kubernetes`` and issues each component its own
certificate (``internal/app/machined/pkg/controllers/secrets/kubernetes.go``). The simulated
control plane does the same into a private folder (0700, files 0600) that goes with it.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import yaml

from hk8s.pki import (
    CertAndKey,
    issue_certificate,
    issue_kube_apiserver_cert,
    load_private_key,
    private_key_to_pem,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["ClusterSecrets", "kubeconfig", "rewrite_serving_cert", "write_pki"]

_VALIDITY = dt.timedelta(days=365)
_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ClusterSecrets:
    """The Kubernetes secrets and settings of a control plane's machine config."""

    kubernetes_ca: CertAndKey
    aggregator_ca: CertAndKey
    service_account_key: bytes
    issuer: str  # the service-account issuer: Talos uses the control-plane endpoint
    service_cidr: str = "10.96.0.0/12"
    cluster_cidr: str = "10.244.0.0/16"
    secretbox: str | None = None  # base64 AES key for Secrets at rest (secretboxEncryptionSecret)


def _write(folder: Path, name: str, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)


def _pair(folder: Path, name: str, pair: CertAndKey) -> None:
    _write(folder, f"{name}.crt", pair.cert_pem)
    _write(folder, f"{name}.key", pair.key_pem)


def _client(ca: CertAndKey, now: dt.datetime, cn: str, orgs: Sequence[str] = ()) -> CertAndKey:
    return issue_certificate(
        ca,
        now=now - _SKEW,
        validity=_VALIDITY,
        common_name=cn,
        organizations=orgs,
        client_auth=True,
        key_encipherment=True,
    )


def write_pki(
    folder: Path,
    secrets: ClusterSecrets,
    *,
    server: str,
    ip_addresses: Sequence[str],
    dns_names: Sequence[str] = (),
) -> Path:
    """Write every certificate, key and kubeconfig the components need into ``folder``
    (created 0700). ``server`` is the URL the controller manager and scheduler reach the
    API at; ``ip_addresses``/``dns_names`` are the serving certificate's extra SANs."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca, aggregator = secrets.kubernetes_ca, secrets.aggregator_ca
    _write(folder, "ca.crt", ca.cert_pem)
    _write(folder, "ca.key", ca.key_pem)
    _write(folder, "aggregator-ca.crt", aggregator.cert_pem)
    sa_key = load_private_key(secrets.service_account_key, check_rsa=False)
    _write(folder, "service-account.key", private_key_to_pem(sa_key))
    serving = issue_kube_apiserver_cert(
        ca,
        now=now - _SKEW,
        ip_addresses=ip_addresses,
        dns_names=dns_names,
        service_cidr=secrets.service_cidr,
        validity=_VALIDITY,
    )
    _pair(folder, "apiserver", serving)
    # kube-apiserver -> kubelets (logs, exec): Talos' "apiserver-kubelet-client", system:masters.
    _pair(folder, "apiserver-kubelet-client",
          _client(ca, now, "apiserver-kubelet-client", ["system:masters"]))  # fmt: skip
    # kube-apiserver -> aggregated APIs (metrics.k8s.io), signed by the aggregator CA.
    _pair(folder, "front-proxy-client", _client(aggregator, now, "front-proxy-client"))
    # The simulated machines' one identity (kubelets, CCM, CSI, Helm): see docs/simulator.md.
    _pair(folder, "machines", _client(ca, now, "hk8s-sim:machines", ["system:masters"]))
    for component in ("kube-controller-manager", "kube-scheduler"):
        pair = _client(ca, now, f"system:{component}")
        _write(
            folder,
            f"{component}.kubeconfig",
            kubeconfig(server, ca.cert_pem, pair),
        )
    # Talos' KubeAuthenticationConfig default: anonymous only for the health endpoints.
    _write(
        folder,
        "authentication.yaml",
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n"
        "anonymous:\n  enabled: true\n  conditions:\n"
        "  - path: /livez\n  - path: /readyz\n  - path: /healthz\n",
    )
    if secrets.secretbox:
        _write(
            folder,
            "encryption.yaml",
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
            "resources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n"
            f"      keys:\n      - name: key2\n        secret: {secrets.secretbox}\n"
            "  - identity: {}\n",
        )
    return folder


def rewrite_serving_cert(
    folder: Path, secrets: ClusterSecrets, *, ip_addresses: Sequence[str]
) -> None:
    """A new serving certificate for other addresses. The key is written to a new file and
    renamed over the old one after the certificate, so a reload never pairs mismatched
    halves for long (kube-apiserver retries a pair that does not match)."""
    serving = issue_kube_apiserver_cert(
        secrets.kubernetes_ca,
        now=dt.datetime.now(dt.UTC) - _SKEW,
        ip_addresses=ip_addresses,
        service_cidr=secrets.service_cidr,
        validity=_VALIDITY,
    )
    for name, data in (("apiserver.crt", serving.cert_pem), ("apiserver.key", serving.key_pem)):
        _write(folder, f"{name}.new", data)
        os.replace(folder / f"{name}.new", folder / name)


def kubeconfig(server: str, ca_pem: bytes, client: CertAndKey) -> str:
    """A one-context kubeconfig with the credentials inline."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": "local",
                "user": {
                    "client-certificate-data": _b64(client.cert_pem),
                    "client-key-data": _b64(client.key_pem),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "local"}}],
        "current-context": "local",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
