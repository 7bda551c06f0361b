"""Certificate authorities and leaf certificates shaped like the ones Talos issues.

The templates follow siderolabs/crypto: ``x509/certificate_authority.go``
(``NewSelfSignedCertificateAuthority``: subject is the organization only, key usage
certSign+digitalSignature, ext key usage serverAuth+clientAuth, basic constraints CA) and
``x509/certificate.go`` (``NewCertificateFromCSR``: no basic constraints, key usage and ext key
usage from the caller, leaf key of the same family as the CA's, see ``x509/keypair.go``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hk8s.errors import SecretsError
from hk8s.pki._keys import (
    KeyAlgorithm,
    PrivateKey,
    generate_private_key,
    key_algorithm,
    load_private_key,
    private_key_to_pem,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CA_VALIDITY",
    "CertAndKey",
    "IPAddress",
    "create_ca",
    "issue_certificate",
    "load_certificate",
    "verify_issued_by",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# secrets.CAValidityTime = 87600h in siderolabs/talos pkg/machinery/config/generate/secrets.
CA_VALIDITY = dt.timedelta(hours=87600)

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass(frozen=True)
class CertAndKey:
    """A certificate with its private key, keeping the PEM bytes as they were read or written.

    Keeping the original PEM means a bundle written by talosctl is written back byte for byte;
    equality compares the PEM bytes.
    """

    cert: x509.Certificate = field(compare=False)
    key: PrivateKey = field(compare=False)
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def build(cls, cert: x509.Certificate, key: PrivateKey) -> CertAndKey:
        return cls(
            cert=cert,
            key=key,
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=private_key_to_pem(key),
        )

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertAndKey:
        """Parse a pair; raises ``SecretsError`` when either is bad or they do not match."""
        cert = load_certificate(cert_pem)
        key = load_private_key(key_pem)
        if _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
            raise SecretsError("private key does not match the certificate's public key")
        return cls(cert=cert, key=key, cert_pem=cert_pem, key_pem=key_pem)

    @classmethod
    def from_base64(cls, crt: str, key: str) -> CertAndKey:
        """From a machine config's or bundle's ``{crt, key}`` (base64 of PEM), e.g. ``machine.ca``.

        >>> os_ca = CertAndKey.from_base64(**config["machine"]["ca"])
        """
        try:
            cert_pem = base64.b64decode(crt, validate=True)
            key_pem = base64.b64decode(key, validate=True)
        except ValueError as exc:
            raise SecretsError(f"certificate or key is not valid base64: {exc}") from exc
        return cls.from_pem(cert_pem, key_pem)

    @property
    def algorithm(self) -> KeyAlgorithm:
        return key_algorithm(self.key)


def load_certificate(pem: bytes) -> x509.Certificate:
    """One PEM certificate; ``SecretsError`` when it does not parse."""
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SecretsError(f"cannot parse certificate: {exc}") from exc


def create_ca(
    *,
    algorithm: KeyAlgorithm,
    now: dt.datetime,
    organization: str | None = None,
    validity: dt.timedelta = CA_VALIDITY,
    rsa_bits: int = 4096,
) -> CertAndKey:
    """A self-signed CA with Talos' template (subject ``O=<organization>`` or empty).

    >>> os_ca = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=now)
    """
    key = generate_private_key(algorithm, rsa_bits=rsa_bits)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    name = x509.Name(attrs)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([SERVER_AUTH, CLIENT_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # siderolabs/crypto x509.NewSubjectKeyID (v0.6.3+, talosctl 1.11.6+): 20 random bytes.
        .add_extension(x509.SubjectKeyIdentifier(secrets.token_bytes(20)), critical=False)
    )
    return CertAndKey.build(builder.sign(key, _signature_hash(key)), key)


def _authority_key_id(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier | None:
    """The issuer's own Subject Key Identifier, as Go's x509.CreateCertificate copies it
    (``authorityKeyId = parent.SubjectKeyId``), whatever way the CA's was made (a hash of
    the key, or random as siderolabs/crypto makes them now); none when the CA has none.
    OpenSSL refuses a chain whose AKI differs from the issuer's SKI."""
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issue_certificate(
    ca: CertAndKey,
    *,
    now: dt.datetime,
    validity: dt.timedelta,
    organizations: Sequence[str] = (),
    common_name: str | None = None,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[IPAddress | str] = (),
    server_auth: bool = False,
    client_auth: bool = False,
    key_encipherment: bool = False,
    algorithm: KeyAlgorithm | None = None,
) -> CertAndKey:
    """A leaf certificate signed by ``ca``, with a new key of the CA's family by default.

    >>> issue_certificate(os_ca, now=now, validity=YEAR, organizations=["os:admin"],
    ...                   client_auth=True)
    """
    key = generate_private_key(algorithm or ca.algorithm)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    if common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = [oid for oid, on in ((SERVER_AUTH, server_auth), (CLIENT_AUTH, client_auth)) if on]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(_key_usage(key_encipherment=key_encipherment), critical=True)
    )
    authority = _authority_key_id(ca.cert)
    if authority is not None:
        builder = builder.add_extension(authority, critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
    ips = dict.fromkeys(ipaddress.ip_address(ip) for ip in ip_addresses)
    sans.extend(x509.IPAddress(ip) for ip in ips)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return CertAndKey.build(builder.sign(ca.key, _signature_hash(ca.key)), key)


def verify_issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether ``ca`` signed ``cert`` (signature and issuer name), for tests and sanity checks."""
    if cert.issuer != ca.subject:
        return False
    public = ca.public_key()
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            algo = cert.signature_hash_algorithm
            assert algo is not None
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algo))
        elif isinstance(public, rsa.RSAPublicKey):
            algo = cert.signature_hash_algorithm
            assert algo is not None
            public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algo)
        else:
            return False
    except Exception:
        return False
    return True


def _key_usage(*, cert_sign: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA512 | None:
    # Ed25519 signs the message itself; ECDSA uses SHA-256 (crypto ``ECDSA(true)``); RSA CAs
    # use SHA-512 (crypto ``RSA(true)`` sets x509.SHA512WithRSA).
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return hashes.SHA256()
    return hashes.SHA512()


def _serial_number() -> int:
    # siderolabs/crypto NewSerialNumber: uniformly random below 2^128; zero is not allowed.
    return x509.random_serial_number() >> 31 or 1


def _public_bytes(public: object) -> bytes:
    assert isinstance(
        public, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    )
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
