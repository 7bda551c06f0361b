"""Private keys: generation and PEM encoding the way Talos writes them.

Talos (siderolabs/crypto ``x509/key.go``, ``x509/constants.go``) writes

* Ed25519 keys as PKCS#8 DER under the non-standard label ``ED25519 PRIVATE KEY``,
* ECDSA P-256 keys as SEC1 DER under ``EC PRIVATE KEY``,
* RSA keys as PKCS#1 DER under ``RSA PRIVATE KEY``,

and reads ``PRIVATE KEY`` (PKCS#8) as well. OpenSSL, and so Python's ``ssl``, does not know the
``ED25519 PRIVATE KEY`` label: :func:`to_pkcs8_pem` rewrites any key for ``load_cert_chain``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hk8s.errors import SecretsError

if TYPE_CHECKING:
    import ssl

__all__ = [
    "KeyAlgorithm",
    "PrivateKey",
    "generate_private_key",
    "key_algorithm",
    "load_private_key",
    "private_key_to_pem",
    "to_pkcs8_pem",
]

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Labels from siderolabs/crypto x509/constants.go.
PEM_ED25519 = "ED25519 PRIVATE KEY"
PEM_EC = "EC PRIVATE KEY"
PEM_RSA = "RSA PRIVATE KEY"
PEM_PKCS8 = "PRIVATE KEY"
_ACCEPTED_LABELS = (PEM_ED25519, PEM_EC, PEM_RSA, PEM_PKCS8)

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\s*(?P<body>.*?)\s*-----END (?P=label)-----",
    re.DOTALL,
)


class KeyAlgorithm(StrEnum):
    """The key types Talos uses: Ed25519 (Talos API), ECDSA P-256 (Kubernetes, etcd), RSA."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    RSA = "rsa"


def generate_private_key(algorithm: KeyAlgorithm, *, rsa_bits: int = 4096) -> PrivateKey:
    """A fresh key; RSA defaults to 4096 bits as siderolabs/crypto ``NewRSAKey`` does."""
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm is KeyAlgorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


def key_algorithm(key: PrivateKey) -> KeyAlgorithm:
    """Which of the three Talos key types ``key`` is (other curves are refused on load)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return KeyAlgorithm.ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return KeyAlgorithm.ECDSA_P256
    return KeyAlgorithm.RSA


def private_key_to_pem(key: PrivateKey) -> bytes:
    """PEM exactly as Talos writes it (see the module docstring for the labels)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return _pem_encode(PEM_ED25519, der)
    # TraditionalOpenSSL is SEC1 for EC keys and PKCS#1 for RSA keys, as Go's
    # x509.MarshalECPrivateKey / MarshalPKCS1PrivateKey produce.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def to_pkcs8_pem(pem: bytes | str) -> bytes:
    """Any accepted key PEM rewritten as PKCS#8 ``PRIVATE KEY``, the form OpenSSL loads.

    >>> ssl_ctx.load_cert_chain(cert_file, key_file)  # key_file holds to_pkcs8_pem(talos_key)
    """
    key = load_private_key(pem)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_cert_chain(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes | str) -> None:
    """Load a certificate and key held in memory into ``context``.

    ``ssl`` loads them from files only: they are written to a private temporary directory
    (the key 0600, as PKCS#8) and removed straight away. Raises ``ssl.SSLError`` as
    ``load_cert_chain`` does.
    """
    with tempfile.TemporaryDirectory(prefix="hk8s-tls-") as tmp:
        crt_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        crt_path.write_bytes(cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(to_pkcs8_pem(key_pem))
        context.load_cert_chain(crt_path, key_path)


def load_private_key(pem: bytes | str, *, check_rsa: bool = True) -> PrivateKey:
    """Parse a private key under any label Talos reads or writes.

    ``check_rsa=False`` skips the consistency check of an RSA key's primes (for RSA-4096 it
    costs about half a second): only for a key hk8s never signs with.

    Raises ``SecretsError`` for anything else: no PEM block, an unknown label, encrypted keys,
    curves other than P-256, or DER that does not parse.
    """
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else pem
    match = _PEM_BLOCK.search(text)
    if match is None:
        raise SecretsError("not a PEM private key: no '-----BEGIN ... PRIVATE KEY-----' block")
    label = match.group("label")
    if label not in _ACCEPTED_LABELS:
        raise SecretsError(
            f"unsupported PEM block {label!r}",
            hint="expected one of: " + ", ".join(_ACCEPTED_LABELS),
        )
    body = match.group("body")
    if ":" in body.split("\n", 1)[0]:
        raise SecretsError(f"encrypted or annotated PEM key ({label}) is not supported")
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
        key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=not check_rsa
        )
    except (binascii.Error, ValueError, TypeError) as exc:
        raise SecretsError(f"cannot parse {label}: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SecretsError(
        f"unsupported key type in {label}: {type(key).__name__}",
        hint="Talos uses Ed25519, ECDSA P-256 or RSA keys",
    )


def _pem_encode(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    text = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return (text + "\n").encode()
