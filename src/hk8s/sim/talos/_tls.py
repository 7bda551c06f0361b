"""TLS for a simulated node's apid: self-signed in maintenance mode, mTLS once configured.

Talos (``internal/app/machined/pkg/controllers/secrets/maintenance_root.go``, ``api.go``)
serves a throwaway self-signed Ed25519 certificate while it has no config and asks for no
client certificate; once configured, apid's certificate is issued from ``machine.ca`` and
client certificates must chain to that CA. Python's ``ssl`` (OpenSSL) does Ed25519, gRPC
needs ALPN ``h2``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from typing import TYPE_CHECKING

from hk8s.pki import create_maintenance_cert, issue_talos_server_cert, load_cert_chain

if TYPE_CHECKING:
    from hk8s.pki import CertAndKey

__all__ = ["maintenance_context", "mtls_server_context", "roles_of"]


def _context(cert: CertAndKey) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    load_cert_chain(ctx, cert.cert_pem, cert.key_pem)
    return ctx


def maintenance_context(ip: str, hostname: str) -> ssl.SSLContext:
    now = dt.datetime.now(dt.UTC)
    cert = create_maintenance_cert(now=now, ip_addresses=[ip], dns_names=[hostname])
    return _context(cert)


def mtls_server_context(
    os_ca: CertAndKey, trusted_ca_pem: bytes, ips: list[str], hostname: str
) -> ssl.SSLContext:
    """apid's context: a cert from the cluster's OS CA, client certs required and verified."""
    now = dt.datetime.now(dt.UTC)
    cert = issue_talos_server_cert(os_ca, now=now, ip_addresses=ips, dns_names=[hostname])
    ctx = _context(cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=trusted_ca_pem.decode("ascii"))
    return ctx


def roles_of(peer_cert: dict[str, object] | None) -> frozenset[str]:
    """Talos roles are the client certificate's Organization values (``os:admin``, ...)."""
    if not peer_cert:
        return frozenset()
    roles: set[str] = set()
    subject = peer_cert.get("subject", ())
    if isinstance(subject, tuple):
        for rdn in subject:
            for name, value in rdn:
                if name == "organizationName":
                    roles.add(str(value))
    return frozenset(roles)
