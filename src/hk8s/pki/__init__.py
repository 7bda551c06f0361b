"""Certificates and keys as Talos makes them, and the talosctl-compatible secrets bundle.

This package sits just above ``hk8s.model``, so both hk8s and its simulator use it: the
simulator issues node and API server certs from the same CAs hk8s generates.

>>> from hk8s.pki import KeyAlgorithm, create_ca, issue_talos_client_cert
>>> os_ca = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=now)
>>> client = issue_talos_client_cert(os_ca, now=now)   # O=os:admin, clientAuth, 1 year
"""

from __future__ import annotations

from hk8s.pki._certs import (
    CA_VALIDITY,
    CertAndKey,
    IPAddress,
    create_ca,
    issue_certificate,
    load_certificate,
    verify_issued_by,
)
from hk8s.pki._files import write_private_file
from hk8s.pki._issue import (
    ADMIN_CERT_VALIDITY,
    TALOS_ADMIN_ROLE,
    create_maintenance_cert,
    issue_kube_admin_cert,
    issue_kube_apiserver_cert,
    issue_talos_client_cert,
    issue_talos_server_cert,
)
from hk8s.pki._keys import (
    KeyAlgorithm,
    PrivateKey,
    generate_private_key,
    key_algorithm,
    load_cert_chain,
    load_private_key,
    private_key_to_pem,
    to_pkcs8_pem,
)
from hk8s.pki._secrets import (
    SecretsBundle,
    generate_secrets,
    generate_token,
    load_secrets,
    parse_secrets,
    render_secrets,
    write_secrets,
)
from hk8s.pki.kubeconfig import generate_admin_kubeconfig, write_kubeconfig
from hk8s.pki.talosconfig import (
    Talosconfig,
    generate_talosconfig,
    load_talosconfig,
    parse_talosconfig,
    render_talosconfig,
    write_talosconfig,
)

__all__ = [
    "ADMIN_CERT_VALIDITY",
    "CA_VALIDITY",
    "TALOS_ADMIN_ROLE",
    "CertAndKey",
    "IPAddress",
    "KeyAlgorithm",
    "PrivateKey",
    "SecretsBundle",
    "Talosconfig",
    "create_ca",
    "create_maintenance_cert",
    "generate_admin_kubeconfig",
    "generate_private_key",
    "generate_secrets",
    "generate_talosconfig",
    "generate_token",
    "issue_certificate",
    "issue_kube_admin_cert",
    "issue_kube_apiserver_cert",
    "issue_talos_client_cert",
    "issue_talos_server_cert",
    "key_algorithm",
    "load_cert_chain",
    "load_certificate",
    "load_private_key",
    "load_secrets",
    "load_talosconfig",
    "parse_secrets",
    "parse_talosconfig",
    "private_key_to_pem",
    "render_secrets",
    "render_talosconfig",
    "to_pkcs8_pem",
    "verify_issued_by",
    "write_kubeconfig",
    "write_private_file",
    "write_secrets",
    "write_talosconfig",
]
