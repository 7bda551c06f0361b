from __future__ import annotations

import base64
import datetime as dt
import os
import ssl
import stat
from typing import TYPE_CHECKING

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hk8s.errors import SecretsError
from hk8s.pki import (
    generate_admin_kubeconfig,
    generate_talosconfig,
    issue_talos_server_cert,
    load_certificate,
    load_private_key,
    load_talosconfig,
    parse_talosconfig,
    render_talosconfig,
    to_pkcs8_pem,
    verify_issued_by,
    write_kubeconfig,
    write_talosconfig,
)

if TYPE_CHECKING:
    from pathlib import Path

    from hk8s.pki import SecretsBundle


def test_talosconfig_round_trip(bundle: SecretsBundle, now: dt.datetime, tmp_path: Path) -> None:
    cfg = generate_talosconfig(
        "demo", bundle.os_ca, endpoints=["127.0.1.1"], nodes=["10.0.1.2"], now=now
    )
    path = write_talosconfig(tmp_path / "talosconfig", cfg)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_talosconfig(path)
    assert loaded == cfg
    assert loaded.context == "demo"
    assert loaded.endpoints == ("127.0.1.1",)
    assert loaded.nodes == ("10.0.1.2",)
    assert loaded.ca_pem == bundle.os_ca.cert_pem


def test_talosconfig_client_identity(bundle: SecretsBundle, now: dt.datetime) -> None:
    cfg = generate_talosconfig("demo", bundle.os_ca, endpoints=["127.0.1.1"], now=now)
    cert = load_certificate(cfg.crt_pem)
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert orgs == ["os:admin"]
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 365
    assert cfg.key_pem.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")
    assert isinstance(load_private_key(cfg.key_pem), ed25519.Ed25519PrivateKey)
    assert verify_issued_by(cert, bundle.os_ca.cert)


def test_talosconfig_yaml_shape(bundle: SecretsBundle, now: dt.datetime) -> None:
    cfg = generate_talosconfig("demo", bundle.os_ca, endpoints=["127.0.1.1"], now=now)
    doc = yaml.safe_load(render_talosconfig(cfg))
    assert doc["context"] == "demo"
    # talosctl's Context struct: nodes is omitempty.
    assert list(doc["contexts"]["demo"]) == ["endpoints", "ca", "crt", "key"]
    assert base64.b64decode(doc["contexts"]["demo"]["ca"]) == bundle.os_ca.cert_pem


TALOSCTL_STYLE = """\
context: other
contexts:
    demo:
        endpoints:
            - 127.0.1.1
        ca: {ca}
        crt: {ca}
        key: {ca}
    other:
        target: 127.0.9.9
        endpoints: []
        ca: {ca}
        crt: {ca}
        key: {ca}
"""


def test_talosctl_file_with_several_contexts() -> None:
    ca = base64.b64encode(b"pem").decode()
    text = TALOSCTL_STYLE.format(ca=ca)
    current = parse_talosconfig(text)
    assert current.context == "other"
    assert current.endpoints == ("127.0.9.9",)  # the deprecated target upgrades to an endpoint
    assert parse_talosconfig(text, context="demo").endpoints == ("127.0.1.1",)
    with pytest.raises(SecretsError, match="'nope' not found") as info:
        parse_talosconfig(text, context="nope")
    assert info.value.hint is not None and "demo" in info.value.hint


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("context: a\n", "no 'contexts'"),
        ("context: a\ncontexts: {a: {endpoints: [x], ca: '%%', crt: a, key: a}}\n", "base64"),
        ("context: a\ncontexts: {a: {endpoints: [x], ca: YQ==, crt: YQ==}}\n", "key is missing"),
        ("contexts: {a: {}}\n", "no current context"),
        ("context: a\ncontexts: {a: {endpoints: x}}\n", "list of strings"),
    ],
)
def test_bad_talosconfig(text: str, fragment: str) -> None:
    with pytest.raises(SecretsError, match=fragment):
        parse_talosconfig(text)


def test_missing_talosconfig_file(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="cannot read talosconfig"):
        load_talosconfig(tmp_path / "talosconfig")


def test_admin_kubeconfig(bundle: SecretsBundle, now: dt.datetime, tmp_path: Path) -> None:
    text = generate_admin_kubeconfig("demo", bundle.k8s_ca, "https://127.0.1.1:6443", now=now)
    doc = yaml.safe_load(text)
    assert doc["current-context"] == "admin@demo"
    assert doc["clusters"][0]["name"] == "demo"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.1.1:6443"
    assert doc["contexts"][0] == {
        "name": "admin@demo",
        "context": {"cluster": "demo", "namespace": "default", "user": "admin@demo"},
    }
    user = doc["users"][0]
    assert user["name"] == "admin@demo"
    cert = load_certificate(base64.b64decode(user["user"]["client-certificate-data"]))
    assert cert.subject.rfc4514_string() == "CN=admin,O=system:masters"
    assert verify_issued_by(cert, bundle.k8s_ca.cert)
    key = load_private_key(base64.b64decode(user["user"]["client-key-data"]))
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ca = base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"])
    assert ca == bundle.k8s_ca.cert_pem

    path = write_kubeconfig(tmp_path / "kubeconfig", text)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_admin_kubeconfig_is_readable_by_the_kubernetes_client(
    bundle: SecretsBundle, now: dt.datetime
) -> None:
    from kubernetes import client, config

    text = generate_admin_kubeconfig("demo", bundle.k8s_ca, "https://127.0.1.1:6443", now=now)
    configuration = client.Configuration()
    config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
        yaml.safe_load(text), client_configuration=configuration
    )
    assert configuration.host == "https://127.0.1.1:6443"
    assert configuration.cert_file and configuration.key_file and configuration.ssl_ca_cert


class _Endpoint:
    """One side of an in-memory TLS connection (no sockets)."""

    def __init__(self, ctx: ssl.SSLContext, *, server_side: bool) -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side)
        self.done = False

    def step(self) -> None:
        if not self.done:
            try:
                self.tls.do_handshake()
                self.done = True
            except ssl.SSLWantReadError:
                pass


def _handshake(server: _Endpoint, client: _Endpoint) -> None:
    for _ in range(20):
        client.step()
        server.step()
        server.incoming.write(client.outgoing.read())
        client.incoming.write(server.outgoing.read())
        if server.done and client.done:
            return
    raise AssertionError("handshake did not finish")


def test_talosconfig_identity_does_mtls_with_a_node_cert(
    bundle: SecretsBundle, now: dt.datetime, tmp_path: Path
) -> None:
    """The talosconfig's Ed25519 client cert and a node's apid cert complete mutual TLS."""
    today = dt.datetime.now(dt.UTC)
    cfg = generate_talosconfig("demo", bundle.os_ca, endpoints=["127.0.1.1"], now=today)
    node = issue_talos_server_cert(bundle.os_ca, now=today, ip_addresses=["127.0.1.1"])
    files = {
        "ca": cfg.ca_pem,
        "crt": cfg.crt_pem,
        "key": to_pkcs8_pem(cfg.key_pem),
        "node_crt": node.cert_pem,
        "node_key": to_pkcs8_pem(node.key_pem),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "node_crt", tmp_path / "node_key")
    server_ctx.load_verify_locations(tmp_path / "ca")
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False  # Talos clients verify the chain, the IP SAN is checked below
    client_ctx.load_cert_chain(tmp_path / "crt", tmp_path / "key")
    client_ctx.load_verify_locations(tmp_path / "ca")
    server = _Endpoint(server_ctx, server_side=True)
    client = _Endpoint(client_ctx, server_side=False)
    _handshake(server, client)
    peer = server.tls.getpeercert()
    assert peer is not None
    assert peer["subject"] == ((("organizationName", "os:admin"),),)
    client_peer = client.tls.getpeercert()
    assert client_peer is not None
    assert ("IP Address", "127.0.1.1") in client_peer["subjectAltName"]
