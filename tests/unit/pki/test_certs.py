from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import shutil
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hk8s.errors import ConflictError, SecretsError
from hk8s.pki import (
    CA_VALIDITY,
    CertAndKey,
    KeyAlgorithm,
    create_ca,
    create_maintenance_cert,
    issue_kube_admin_cert,
    issue_kube_apiserver_cert,
    issue_talos_client_cert,
    issue_talos_server_cert,
    verify_issued_by,
    write_private_file,
)

if TYPE_CHECKING:
    from pathlib import Path

SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


def _orgs(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _cn(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]


def test_ca_template_matches_talos(os_ca: CertAndKey, now: dt.datetime) -> None:
    cert = os_ca.cert
    assert isinstance(cert.public_key(), ed25519.Ed25519PublicKey)
    assert cert.subject == cert.issuer
    assert _orgs(cert) == ["talos"]
    assert _cn(cert) == []
    assert cert.not_valid_before_utc == now
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == CA_VALIDITY
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.digital_signature
    assert not ku.value.key_encipherment
    assert _eku(cert) == [SERVER, CLIENT]
    assert verify_issued_by(cert, cert)


def test_talos_client_cert(os_ca: CertAndKey, now: dt.datetime) -> None:
    client = issue_talos_client_cert(os_ca, now=now)
    cert = client.cert
    assert isinstance(client.key, ed25519.Ed25519PrivateKey)
    assert _orgs(cert) == ["os:admin"]
    assert _eku(cert) == [CLIENT]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=365)
    bc = [e for e in cert.extensions if isinstance(e.value, x509.BasicConstraints)]
    assert bc == []
    assert verify_issued_by(cert, os_ca.cert)
    other = create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=now)
    assert not verify_issued_by(cert, other.cert)


def test_talos_server_cert_has_ip_sans(os_ca: CertAndKey, now: dt.datetime) -> None:
    server = issue_talos_server_cert(
        os_ca, now=now, ip_addresses=["127.0.1.5", "10.0.1.2"], dns_names=["demo-cp-1"]
    )
    dns, ips = _sans(server.cert)
    assert dns == ["demo-cp-1"]
    assert ips == ["127.0.1.5", "10.0.1.2"]
    assert _eku(server.cert) == [SERVER]
    assert verify_issued_by(server.cert, os_ca.cert)


def test_kube_apiserver_cert(k8s_ca: CertAndKey, now: dt.datetime) -> None:
    server = issue_kube_apiserver_cert(
        k8s_ca, now=now, ip_addresses=["127.0.2.1"], dns_names=["api.example"]
    )
    assert isinstance(server.key, ec.EllipticCurvePrivateKey)
    dns, ips = _sans(server.cert)
    assert "api.example" in dns and "kubernetes.default.svc.cluster.local" in dns
    assert ips == ["127.0.2.1", "127.0.0.1", "10.96.0.1"]
    assert _cn(server.cert) == ["kube-apiserver"]
    assert verify_issued_by(server.cert, k8s_ca.cert)


def test_kube_admin_cert(k8s_ca: CertAndKey, now: dt.datetime) -> None:
    admin = issue_kube_admin_cert(k8s_ca, now=now)
    cert = admin.cert
    assert _cn(cert) == ["admin"]
    assert _orgs(cert) == ["system:masters"]
    assert _eku(cert) == [CLIENT]
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc == now + dt.timedelta(days=365)
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign


def test_pair_round_trips_through_pem(os_ca: CertAndKey) -> None:
    again = CertAndKey.from_pem(os_ca.cert_pem, os_ca.key_pem)
    assert again.cert == os_ca.cert
    assert again.algorithm is KeyAlgorithm.ED25519


def test_mismatched_pair_is_refused(os_ca: CertAndKey, k8s_ca: CertAndKey) -> None:
    with pytest.raises(SecretsError, match="does not match"):
        CertAndKey.from_pem(os_ca.cert_pem, k8s_ca.key_pem)


def test_serials_are_positive_and_distinct(os_ca: CertAndKey, now: dt.datetime) -> None:
    serials = {issue_talos_client_cert(os_ca, now=now).cert.serial_number for _ in range(5)}
    assert len(serials) == 5 and all(0 < s < 2**128 for s in serials)


def test_ip_addresses_accept_objects(os_ca: CertAndKey, now: dt.datetime) -> None:
    ip = ipaddress.ip_address("fd00::1")
    server = issue_talos_server_cert(os_ca, now=now, ip_addresses=[ip])
    assert _sans(server.cert)[1] == ["fd00::1"]


def test_private_file_is_0600_and_not_clobbered(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        target = write_private_file(tmp_path / "secret", "one", overwrite=False)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(ConflictError, match="already exists"):
        write_private_file(target, "two", overwrite=False)
    assert target.read_text() == "one"
    write_private_file(target, b"three", overwrite=True)
    assert target.read_text() == "three"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_private_file_replaces_a_world_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "kubeconfig"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, "new", overwrite=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_maintenance_cert_is_self_contained_ed25519(now: dt.datetime) -> None:
    server = create_maintenance_cert(now=now, ip_addresses=["127.0.3.4"])
    assert isinstance(server.key, ed25519.Ed25519PrivateKey)
    assert _sans(server.cert) == ([], ["127.0.3.4"])
    assert _eku(server.cert) == [SERVER]


def test_ca_from_machine_config_base64(os_ca: CertAndKey) -> None:
    crt = base64.b64encode(os_ca.cert_pem).decode()
    key = base64.b64encode(os_ca.key_pem).decode()
    assert CertAndKey.from_base64(crt=crt, key=key) == os_ca
    with pytest.raises(SecretsError, match="base64"):
        CertAndKey.from_base64(crt="%%", key=key)


def _ca_like_talosctl(key_id: bytes | None, now: dt.datetime) -> CertAndKey:
    """A Talos API CA as talosctl writes it: from 1.11.6 on (siderolabs/crypto v0.6.3+) its
    Subject Key Identifier is 20 random bytes; older ones a SHA-1 of the key; or none."""
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "talos")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False), True
        )
    )
    if key_id is not None:
        builder = builder.add_extension(x509.SubjectKeyIdentifier(key_id), critical=False)
    return CertAndKey.build(builder.sign(key, None), key)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("key_id", [os.urandom(20), None], ids=["random-skid", "no-skid"])
def test_openssl_verifies_our_client_cert_against_a_talosctl_ca(
    key_id: bytes | None, tmp_path: Path
) -> None:
    # Go's CreateCertificate copies the issuer's SKI into the AKI; so must we, or OpenSSL
    # refuses the chain ("authority and subject key identifier mismatch").
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    ca = _ca_like_talosctl(key_id, now)
    client = issue_talos_client_cert(ca, now=now)
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    (tmp_path / "client.pem").write_bytes(client.cert_pem)
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "client.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    akis = [
        e.value for e in client.cert.extensions if isinstance(e.value, x509.AuthorityKeyIdentifier)
    ]
    assert [a.key_identifier for a in akis] == ([key_id] if key_id else [])


def test_our_cas_have_random_key_identifiers_as_siderolabs_crypto(now: dt.datetime) -> None:
    first, second = (
        create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=now) for _ in "ab"
    )
    ids = [c.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
           for c in (first, second)]  # fmt: skip
    assert all(len(i) == 20 for i in ids) and ids[0] != ids[1]
    hashed = x509.SubjectKeyIdentifier.from_public_key(first.key.public_key()).digest  # type: ignore[arg-type]
    assert ids[0] != hashed
