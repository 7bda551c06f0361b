from __future__ import annotations

import base64
import os
import re
import stat
from typing import TYPE_CHECKING

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hk8s.errors import SecretsError
from hk8s.pki import (
    CA_VALIDITY,
    KeyAlgorithm,
    generate_secrets,
    issue_talos_client_cert,
    load_secrets,
    parse_secrets,
    render_secrets,
    verify_issued_by,
    write_secrets,
)

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from hk8s.pki import CertAndKey, SecretsBundle

TOKEN = re.compile(r"^[0-9a-z]{6}\.[0-9a-z]{16}$")


def _orgs(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _assert_talos_ca(pair: CertAndKey, now: dt.datetime) -> None:
    cert = pair.cert
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.digital_signature
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_before_utc == now
    assert cert.not_valid_after_utc == now + CA_VALIDITY
    assert verify_issued_by(cert, cert)


def test_generated_certificates(bundle: SecretsBundle, now: dt.datetime) -> None:
    expected = [
        (bundle.os_ca, ed25519.Ed25519PrivateKey, ["talos"]),
        (bundle.k8s_ca, ec.EllipticCurvePrivateKey, ["kubernetes"]),
        (bundle.etcd_ca, ec.EllipticCurvePrivateKey, ["etcd"]),
        # Upstream's aggregator CA has an empty subject (see _secrets.py docstring).
        (bundle.k8s_aggregator_ca, ec.EllipticCurvePrivateKey, []),
    ]
    for pair, key_type, orgs in expected:
        assert isinstance(pair.key, key_type)
        assert _orgs(pair.cert) == orgs
        assert list(pair.cert.subject) == [] or orgs
        _assert_talos_ca(pair, now)
    assert isinstance(bundle.k8s_ca.key, ec.EllipticCurvePrivateKey)
    assert isinstance(bundle.k8s_ca.key.curve, ec.SECP256R1)


def test_generated_service_account_key_is_rsa_4096(bundle: SecretsBundle) -> None:
    key = bundle.service_account_key
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 4096
    assert bundle.service_account_key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_generated_tokens_and_random_secrets(bundle: SecretsBundle) -> None:
    assert TOKEN.match(bundle.bootstrap_token)
    assert TOKEN.match(bundle.trustd_token)
    assert bundle.bootstrap_token != bundle.trustd_token
    for value in (bundle.cluster_id, bundle.cluster_secret, bundle.secretbox_encryption_secret):
        assert value is not None
        assert len(base64.b64decode(value, validate=True)) == 32
    assert bundle.aescbc_encryption_secret is None


def test_ecdsa_service_account_option() -> None:
    bundle = generate_secrets(service_account_algorithm=KeyAlgorithm.ECDSA_P256)
    assert isinstance(bundle.service_account_key, ec.EllipticCurvePrivateKey)


def test_rendered_yaml_has_talosctl_keys(bundle: SecretsBundle) -> None:
    doc = yaml.safe_load(render_secrets(bundle))
    assert list(doc) == ["cluster", "secrets", "trustdinfo", "certs"]
    assert list(doc["cluster"]) == ["id", "secret"]
    assert list(doc["secrets"]) == ["bootstraptoken", "secretboxencryptionsecret"]
    assert list(doc["certs"]) == ["etcd", "k8s", "k8saggregator", "k8sserviceaccount", "os"]
    assert list(doc["certs"]["k8sserviceaccount"]) == ["key"]
    os_key = base64.b64decode(doc["certs"]["os"]["key"])
    assert os_key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")


def test_round_trip_through_file(bundle: SecretsBundle, tmp_path: Path) -> None:
    path = write_secrets(tmp_path / "secrets.yaml", bundle)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secrets(path) == bundle


def test_write_refuses_to_overwrite(bundle: SecretsBundle, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("precious")
    with pytest.raises(SecretsError, match="refusing to overwrite") as info:
        write_secrets(path, bundle)
    assert info.value.hint
    assert path.read_text() == "precious"
    write_secrets(path, bundle, overwrite=True)
    assert load_secrets(path) == bundle


def test_talosctl_example_loads_and_writes_back_identically(example_secrets_path: Path) -> None:
    bundle = load_secrets(example_secrets_path)
    assert bundle.bootstrap_token == "inn7ol.u4ehnti8qyls9ymo"
    assert bundle.trustd_token == "d8cwfa.eyvpi0xwxyarbfid"
    assert isinstance(bundle.os_ca.key, ed25519.Ed25519PrivateKey)
    # Older talosctl made an ECDSA service-account key; it must still load.
    assert isinstance(bundle.service_account_key, ec.EllipticCurvePrivateKey)
    body = example_secrets_path.read_text().split("\n", 1)[1]  # minus the comment line
    assert render_secrets(bundle) == body


def test_example_ca_issues_certs_with_identical_issuer_bytes(
    example_secrets_path: Path, now: dt.datetime
) -> None:
    """Go compares raw issuer/subject bytes when it builds chains: they must match exactly."""
    bundle = load_secrets(example_secrets_path)
    client = issue_talos_client_cert(bundle.os_ca, now=now)
    assert client.cert.issuer.public_bytes() == bundle.os_ca.cert.subject.public_bytes()
    assert verify_issued_by(client.cert, bundle.os_ca.cert)


def test_aescbc_secret_is_kept(example_secrets_path: Path) -> None:
    doc = yaml.safe_load(example_secrets_path.read_text())
    doc["secrets"] = {"bootstraptoken": "abcdef.0123456789abcdef", "aescbcencryptionsecret": "x"}
    bundle = parse_secrets(yaml.safe_dump(doc))
    assert bundle.aescbc_encryption_secret == "x"
    assert bundle.secretbox_encryption_secret is None
    assert "aescbcencryptionsecret: x" in render_secrets(bundle)


def test_missing_file_has_a_hint(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="not found") as info:
        load_secrets(tmp_path / "nope.yaml")
    assert info.value.hint


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.pop("cluster"), "cluster.id: missing"),
        (lambda d: d["secrets"].update(bootstraptoken="short"), "secrets.bootstraptoken"),
        (lambda d: d["trustdinfo"].update(token=5), "trustdinfo.token: expected a string"),
        (lambda d: d["certs"]["os"].update(crt="%%%"), "certs.os.crt: not valid base64"),
        (lambda d: d["certs"]["os"].update(key=d["certs"]["k8s"]["key"]), "does not match"),
        (
            lambda d: d["certs"]["k8sserviceaccount"].update(key=base64.b64encode(b"x").decode()),
            "certs.k8sserviceaccount.key",
        ),
        (lambda d: d["secrets"].pop("secretboxencryptionsecret"), "secretboxencryptionsecret"),
    ],
)
def test_bad_bundles_name_the_problem(
    example_secrets_path: Path, mutate: object, fragment: str
) -> None:
    doc = yaml.safe_load(example_secrets_path.read_text())
    assert callable(mutate)
    mutate(doc)
    with pytest.raises(SecretsError, match=re.escape(fragment)):
        parse_secrets(yaml.safe_dump(doc), source="bad.yaml")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SecretsError) as info:
        parse_secrets("cluster: {}\n")
    text = str(info.value)
    assert "cluster.id" in text and "certs.os.crt" in text and "trustdinfo.token" in text


@pytest.mark.parametrize("text", ["- a list\n", "key: [unclosed\n", ""])
def test_non_mapping_or_broken_yaml(text: str) -> None:
    with pytest.raises(SecretsError):
        parse_secrets(text)


def test_leaf_certificate_in_place_of_a_ca_is_refused(
    example_secrets_path: Path, now: dt.datetime
) -> None:
    bundle = load_secrets(example_secrets_path)
    leaf = issue_talos_client_cert(bundle.os_ca, now=now)
    doc = yaml.safe_load(example_secrets_path.read_text())
    doc["certs"]["os"] = {
        "crt": base64.b64encode(leaf.cert_pem).decode(),
        "key": base64.b64encode(leaf.key_pem).decode(),
    }
    with pytest.raises(SecretsError, match="not a CA"):
        parse_secrets(yaml.safe_dump(doc))


def test_write_into_a_missing_directory_is_a_secrets_error(
    bundle: SecretsBundle, tmp_path: Path
) -> None:
    with pytest.raises(SecretsError, match="cannot write"):
        write_secrets(tmp_path / "missing" / "secrets.yaml", bundle)
