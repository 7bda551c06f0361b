"""The concrete certificates hk8s and its simulator issue, each shaped as Talos issues it.

Sources: siderolabs/talos ``pkg/machinery/config/generate/secrets/ca.go``
(``NewAdminCertificateAndKey``: Talos API client certs), ``pkg/kubeconfig/generate.go``
(admin kubeconfig: CN ``admin``, O ``system:masters``, digitalSignature+keyEncipherment,
clientAuth, valid from 10 s ago), ``internal/app/machined/pkg/controllers/secrets/
kubernetes_dynamic_certs.go`` (kube-apiserver serving cert: CN ``kube-apiserver``,
O ``kube-master``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import TYPE_CHECKING

from hk8s.pki._certs import CertAndKey, IPAddress, create_ca, issue_certificate
from hk8s.pki._keys import KeyAlgorithm

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "ADMIN_CERT_VALIDITY",
    "TALOS_ADMIN_ROLE",
    "create_maintenance_cert",
    "issue_kube_admin_cert",
    "issue_kube_apiserver_cert",
    "issue_talos_client_cert",
    "issue_talos_server_cert",
]

# constants.TalosAPIDefaultCertificateValidityDuration and KubernetesAdminCertDefaultLifetime.
ADMIN_CERT_VALIDITY = dt.timedelta(days=365)
TALOS_ADMIN_ROLE = "os:admin"
_CLOCK_SKEW = dt.timedelta(seconds=10)


def issue_talos_client_cert(
    os_ca: CertAndKey,
    *,
    now: dt.datetime,
    roles: Sequence[str] = (TALOS_ADMIN_ROLE,),
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> CertAndKey:
    """A talosconfig client cert: ``O=<role>``, clientAuth, key of the CA's family (Ed25519)."""
    return issue_certificate(
        os_ca, now=now, validity=validity, organizations=roles, client_auth=True
    )


def issue_talos_server_cert(
    os_ca: CertAndKey,
    *,
    now: dt.datetime,
    ip_addresses: Sequence[IPAddress | str],
    dns_names: Sequence[str] = (),
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> CertAndKey:
    """The apid serving cert of a node, with its IPs (and hostname) as SANs.

    Talos rotates this cert daily; the simulator issues it for ``validity`` (a year by default)
    so that a fast simulated clock never outruns it.
    """
    return issue_certificate(
        os_ca,
        now=now,
        validity=validity,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        server_auth=True,
    )


def create_maintenance_cert(
    *,
    now: dt.datetime,
    ip_addresses: Sequence[IPAddress | str],
    dns_names: Sequence[str] = (),
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> CertAndKey:
    """The self-signed Ed25519 serving cert of a node in maintenance mode.

    A node without a config has no cluster CA; Talos serves a throwaway self-signed Ed25519
    cert and clients connect without verifying it (``talosctl --insecure``).
    """
    ca = create_ca(algorithm=KeyAlgorithm.ED25519, now=now, validity=validity)
    return issue_talos_server_cert(
        ca, now=now, ip_addresses=ip_addresses, dns_names=dns_names, validity=validity
    )


def issue_kube_apiserver_cert(
    k8s_ca: CertAndKey,
    *,
    now: dt.datetime,
    ip_addresses: Sequence[IPAddress | str],
    dns_names: Sequence[str] = (),
    service_cidr: str = "10.96.0.0/12",
    dns_domain: str = "cluster.local",
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> CertAndKey:
    """The kube-apiserver serving cert with the SANs Kubernetes clients expect.

    Adds the in-cluster names (``kubernetes.default.svc...``), ``localhost``, ``127.0.0.1`` and the
    first address of the service CIDR (the ``kubernetes`` Service IP).
    """
    service_ip = str(next(ipaddress.ip_network(service_cidr, strict=False).hosts()))
    names = [
        *dns_names,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{dns_domain}",
        "localhost",
    ]
    return issue_certificate(
        k8s_ca,
        now=now,
        validity=validity,
        organizations=["kube-master"],
        common_name="kube-apiserver",
        dns_names=names,
        ip_addresses=[*ip_addresses, "127.0.0.1", service_ip],
        server_auth=True,
    )


def issue_kube_admin_cert(
    k8s_ca: CertAndKey,
    *,
    now: dt.datetime,
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> CertAndKey:
    """The admin kubeconfig client cert: CN ``admin``, O ``system:masters``, clientAuth."""
    return issue_certificate(
        k8s_ca,
        now=now - _CLOCK_SKEW,
        validity=validity + _CLOCK_SKEW,
        organizations=["system:masters"],
        common_name="admin",
        client_auth=True,
        key_encipherment=True,
    )
