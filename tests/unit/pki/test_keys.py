from __future__ import annotations

import base64
import ssl
from typing import TYPE_CHECKING

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hk8s.errors import SecretsError
from hk8s.pki import (
    KeyAlgorithm,
    generate_private_key,
    issue_talos_server_cert,
    key_algorithm,
    load_private_key,
    private_key_to_pem,
    to_pkcs8_pem,
)

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from hk8s.pki import CertAndKey


def _first_line(pem: bytes) -> str:
    return pem.decode().splitlines()[0]


def test_ed25519_is_written_as_pkcs8_under_the_talos_label() -> None:
    key = generate_private_key(KeyAlgorithm.ED25519)
    pem = private_key_to_pem(key)
    assert _first_line(pem) == "-----BEGIN ED25519 PRIVATE KEY-----"
    # The body is PKCS#8 DER (siderolabs/crypto uses x509.MarshalPKCS8PrivateKey).
    body = b"".join(pem.splitlines()[1:-1])
    loaded = serialization.load_der_private_key(base64.b64decode(body), None)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)


@pytest.mark.parametrize(
    ("algorithm", "label", "cls"),
    [
        (KeyAlgorithm.ECDSA_P256, "EC PRIVATE KEY", ec.EllipticCurvePrivateKey),
        (KeyAlgorithm.ED25519, "ED25519 PRIVATE KEY", ed25519.Ed25519PrivateKey),
    ],
)
def test_round_trip(algorithm: KeyAlgorithm, label: str, cls: type) -> None:
    key = generate_private_key(algorithm)
    pem = private_key_to_pem(key)
    assert _first_line(pem) == f"-----BEGIN {label}-----"
    loaded = load_private_key(pem)
    assert isinstance(loaded, cls)
    assert key_algorithm(loaded) is algorithm
    assert private_key_to_pem(loaded) == pem


def test_rsa_is_written_as_pkcs1() -> None:
    key = generate_private_key(KeyAlgorithm.RSA, rsa_bits=1024)
    pem = private_key_to_pem(key)
    assert _first_line(pem) == "-----BEGIN RSA PRIVATE KEY-----"
    assert isinstance(load_private_key(pem), rsa.RSAPrivateKey)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.ED25519, KeyAlgorithm.ECDSA_P256])
def test_pkcs8_label_is_accepted_and_produced(algorithm: KeyAlgorithm) -> None:
    key = generate_private_key(algorithm)
    pkcs8 = to_pkcs8_pem(private_key_to_pem(key))
    assert _first_line(pkcs8) == "-----BEGIN PRIVATE KEY-----"
    assert private_key_to_pem(load_private_key(pkcs8)) == private_key_to_pem(key)


def test_talosctl_written_ed25519_key_loads(example_secrets_path: Path) -> None:
    data = yaml.safe_load(example_secrets_path.read_text())
    pem = base64.b64decode(data["certs"]["os"]["key"])
    assert _first_line(pem) == "-----BEGIN ED25519 PRIVATE KEY-----"
    key = load_private_key(pem)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    # Written back byte for byte as talosctl wrote it.
    assert private_key_to_pem(key) == pem


@pytest.mark.parametrize(
    ("pem", "fragment"),
    [
        (b"hello", "no '-----BEGIN"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "unsupported PEM"),
        (b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", "cannot parse"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot parse"),
    ],
)
def test_bad_keys_raise_secrets_error(pem: bytes, fragment: str) -> None:
    with pytest.raises(SecretsError, match=fragment):
        load_private_key(pem)


def test_other_curves_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SecretsError, match="unsupported key type"):
        load_private_key(pem)


def test_python_ssl_loads_an_ed25519_pair_after_pkcs8_rewrite(
    os_ca: CertAndKey, now: dt.datetime, tmp_path: Path
) -> None:
    """What the Talos client does with a talosconfig: OpenSSL needs the PKCS#8 label."""
    pair = issue_talos_server_cert(os_ca, now=now, ip_addresses=["127.0.0.1"])
    cert_file = tmp_path / "crt.pem"
    key_file = tmp_path / "key.pem"
    cert_file.write_bytes(pair.cert_pem)
    key_file.write_bytes(pair.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(cert_file, key_file)
    key_file.write_bytes(to_pkcs8_pem(pair.key_pem))
    ctx.load_cert_chain(cert_file, key_file)
