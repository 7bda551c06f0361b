"""TLS for the Talos API: mTLS pinned to the cluster CA, or insecure for maintenance mode.

Why Python's ``ssl`` (through grpclib) and not grpcio: Talos' PKI is Ed25519 by default and
grpcio's BoringSSL does not offer Ed25519 signatures (grpc/grpc#24252); OpenSSL does.

Talos node certificates carry IP SANs and hk8s dials nodes by IP, often through a port map or
a load balancer, so the server is authenticated by its chain to the pinned cluster CA, with
hostname checks off (talosctl does the same: it verifies against the talosconfig CA only).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hk8s.errors import SecretsError
from hk8s.pki import load_cert_chain, load_private_key

if TYPE_CHECKING:
    from hk8s.pki import Talosconfig

__all__ = ["TalosCredentials", "client_context", "insecure_context", "mtls_context"]

# Go's gRPC (Talos) refuses connections that do not negotiate HTTP/2 by ALPN (grpc-go >= 1.67).
_ALPN = ["h2"]


@dataclass(frozen=True, repr=False)
class TalosCredentials:
    """PEM bytes of the cluster's Talos CA certificate and an admin client certificate/key.

    The key may use Talos' ``ED25519 PRIVATE KEY`` label or ``PRIVATE KEY``/``EC PRIVATE KEY``.
    ``repr`` never shows the key.
    """

    ca: bytes
    crt: bytes
    key: bytes

    def __repr__(self) -> str:
        return "TalosCredentials(ca=..., crt=..., key=<hidden>)"

    @classmethod
    def from_talosconfig(cls, config: Talosconfig) -> TalosCredentials:
        """The identity of a talosconfig context (``hk8s.pki.load_talosconfig``)."""
        return cls(ca=config.ca_pem, crt=config.crt_pem, key=config.key_pem)


def client_context(credentials: TalosCredentials | None) -> ssl.SSLContext:
    """The one context for ``credentials`` (None: maintenance mode), shared by every client.

    An ``SSLContext`` holds its CA store and client certificate and serves any number of
    connections; a context per node cost a certificate load and about 1.8 MiB per node (a
    100-node create held 100 copies of the same identity).
    """
    return _insecure() if credentials is None else _mtls(credentials)


@functools.lru_cache(maxsize=1)
def _insecure() -> ssl.SSLContext:
    return insecure_context()


@functools.lru_cache(maxsize=8)
def _mtls(credentials: TalosCredentials) -> ssl.SSLContext:
    return mtls_context(credentials)


def _base_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.set_alpn_protocols(_ALPN)
    return ctx


def insecure_context() -> ssl.SSLContext:
    """Maintenance mode: the node serves a self-signed certificate and wants no client cert."""
    ctx = _base_context()
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def mtls_context(credentials: TalosCredentials) -> ssl.SSLContext:
    """Client certificate auth, server verified against the cluster CA only (no hostnames)."""
    try:
        cert = x509.load_pem_x509_certificate(credentials.crt)
        x509.load_pem_x509_certificates(credentials.ca)
    except ValueError as exc:
        raise SecretsError(f"talos credentials: cannot parse certificate: {exc}") from exc
    key = load_private_key(credentials.key)
    public = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*public) != cert.public_key().public_bytes(*public):
        raise SecretsError(
            "talos credentials: the client key does not belong to the client certificate",
            hint="regenerate the talosconfig from the cluster's secrets bundle",
        )
    ctx = _base_context()
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=credentials.ca.decode("ascii"))
    try:
        load_cert_chain(ctx, credentials.crt, credentials.key)
    except ssl.SSLError as exc:
        raise SecretsError(f"talos credentials: {exc}") from exc
    return ctx
