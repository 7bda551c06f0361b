"""The cluster's secrets bundle, file-compatible with ``talosctl gen secrets``.

Layout and algorithms follow siderolabs/talos ``pkg/machinery/config/generate/secrets``
(``secrets.go``, ``bundle.go``, ``ca.go``, ``utils.go``) for Talos 1.11-1.13:

* ``certs.os``: Ed25519 CA ``O=talos``; ``certs.k8s``: ECDSA P-256 ``O=kubernetes``;
  ``certs.etcd``: ECDSA P-256 ``O=etcd``; ``certs.k8saggregator``: ECDSA P-256 with an *empty*
  subject (upstream passes ``CommonName("front-proxy")``, but the CA template only copies the
  organization); all valid 87600 h.
* ``certs.k8sserviceaccount``: RSA-4096, because ``VersionContract.UseRSAServiceAccountKey()``
  is true for every contract above 1.6. Bundles from older talosctl carry an ECDSA key (as
  ``secrets.example.yaml`` does); both load.
* tokens ``[0-9a-z]{6}.[0-9a-z]{16}``; secretbox secret, cluster id and cluster secret are
  32 random bytes in standard base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import secrets as _random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from hk8s.errors import ConflictError, SecretsError
from hk8s.pki._certs import CertAndKey, create_ca
from hk8s.pki._files import write_private_file
from hk8s.pki._keys import (
    KeyAlgorithm,
    PrivateKey,
    generate_private_key,
    key_algorithm,
    load_private_key,
    private_key_to_pem,
)

__all__ = [
    "SecretsBundle",
    "generate_secrets",
    "generate_token",
    "load_secrets",
    "parse_secrets",
    "render_secrets",
    "write_secrets",
]

TOKEN_PATTERN = re.compile(r"^[0-9a-z]{6}\.[0-9a-z]{16}$")
_TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_RANDOM_SIZE = 32  # constants.DefaultClusterIDSize / DefaultClusterSecretSize, cis token size
_CERT_KEYS = ("etcd", "k8s", "k8saggregator", "os")


@dataclass(frozen=True)
class SecretsBundle:
    """Everything that makes a cluster's identity; lose it and the cluster cannot be managed."""

    cluster_id: str
    cluster_secret: str
    bootstrap_token: str
    trustd_token: str
    secretbox_encryption_secret: str | None
    aescbc_encryption_secret: str | None
    etcd_ca: CertAndKey
    k8s_ca: CertAndKey
    k8s_aggregator_ca: CertAndKey
    service_account_key_pem: bytes
    os_ca: CertAndKey

    @property
    def service_account_key(self) -> PrivateKey:
        return load_private_key(self.service_account_key_pem)


def generate_secrets(
    now: dt.datetime | None = None,
    *,
    service_account_algorithm: KeyAlgorithm = KeyAlgorithm.RSA,
) -> SecretsBundle:
    """A new bundle as ``talosctl gen secrets`` makes it for Talos 1.11-1.13.

    ``now`` is the CAs' not-before (wall-clock UTC, default: now). RSA-4096 generation takes
    about a second.

    >>> bundle = generate_secrets()
    >>> write_secrets("secrets.yaml", bundle)
    """
    start = now or dt.datetime.now(dt.UTC)
    sa_key = generate_private_key(service_account_algorithm)
    return SecretsBundle(
        cluster_id=_random_b64(),
        cluster_secret=_random_b64(),
        bootstrap_token=generate_token(),
        trustd_token=generate_token(),
        secretbox_encryption_secret=_random_b64(),
        aescbc_encryption_secret=None,
        etcd_ca=create_ca(algorithm=KeyAlgorithm.ECDSA_P256, organization="etcd", now=start),
        k8s_ca=create_ca(algorithm=KeyAlgorithm.ECDSA_P256, organization="kubernetes", now=start),
        k8s_aggregator_ca=create_ca(algorithm=KeyAlgorithm.ECDSA_P256, now=start),
        service_account_key_pem=private_key_to_pem(sa_key),
        os_ca=create_ca(algorithm=KeyAlgorithm.ED25519, organization="talos", now=start),
    )


def generate_token() -> str:
    """A bootstrap/trustd token ``[0-9a-z]{6}.[0-9a-z]{16}`` (secrets/utils.go ``genToken``)."""
    first = "".join(_random.choice(_TOKEN_ALPHABET) for _ in range(6))
    second = "".join(_random.choice(_TOKEN_ALPHABET) for _ in range(16))
    return f"{first}.{second}"


def render_secrets(bundle: SecretsBundle) -> str:
    """The YAML text, with talosctl's keys in talosctl's order and base64 PEM values."""
    secrets: dict[str, str] = {"bootstraptoken": bundle.bootstrap_token}
    # Field order of upstream's Secrets struct; both encryption secrets are omitempty.
    if bundle.aescbc_encryption_secret:
        secrets["aescbcencryptionsecret"] = bundle.aescbc_encryption_secret
    if bundle.secretbox_encryption_secret:
        secrets["secretboxencryptionsecret"] = bundle.secretbox_encryption_secret
    doc = {
        "cluster": {"id": bundle.cluster_id, "secret": bundle.cluster_secret},
        "secrets": secrets,
        "trustdinfo": {"token": bundle.trustd_token},
        "certs": {
            "etcd": _pair(bundle.etcd_ca),
            "k8s": _pair(bundle.k8s_ca),
            "k8saggregator": _pair(bundle.k8s_aggregator_ca),
            "k8sserviceaccount": {"key": _b64(bundle.service_account_key_pem)},
            "os": _pair(bundle.os_ca),
        },
    }
    return yaml.safe_dump(doc, sort_keys=False, indent=4, width=1 << 20)


def write_secrets(
    path: str | os.PathLike[str], bundle: SecretsBundle, *, overwrite: bool = False
) -> Path:
    """Write the bundle with mode 0600, atomically; refuses to replace an existing file.

    Regenerating secrets for a running cluster would lock hk8s out of it, hence the default.
    """
    try:
        return write_private_file(path, render_secrets(bundle), overwrite=overwrite)
    except ConflictError as exc:
        raise SecretsError(
            f"secrets bundle {path} already exists; refusing to overwrite it",
            hint="the cluster's identity lives in that file: keep it, or move it away first",
        ) from exc
    except OSError as exc:
        raise SecretsError(f"cannot write secrets bundle {path}: {exc}") from exc


def load_secrets(path: str | os.PathLike[str]) -> SecretsBundle:
    """Read a bundle written by hk8s or by ``talosctl gen secrets``."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError as exc:
        raise SecretsError(
            f"secrets bundle {path} not found",
            hint="it is created by the first 'hk8s create'; restore it from your backup",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"cannot read secrets bundle {path}: {exc}") from exc
    return parse_secrets(text, source=str(path))


def parse_secrets(text: str, *, source: str = "secrets.yaml") -> SecretsBundle:
    """Parse and check bundle text; ``SecretsError`` lists every problem found."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SecretsError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise SecretsError(f"{source}: expected a mapping with cluster, secrets, certs keys")
    reader = _Reader(doc)
    pairs = {name: reader.pair(name) for name in _CERT_KEYS}
    sa_pem = reader.key("certs.k8sserviceaccount.key")
    bootstrap = reader.token("secrets.bootstraptoken")
    trustd = reader.token("trustdinfo.token")
    bundle_args: dict[str, Any] = {
        "cluster_id": reader.string("cluster.id"),
        "cluster_secret": reader.string("cluster.secret"),
        "secretbox_encryption_secret": reader.string(
            "secrets.secretboxencryptionsecret", required=False
        ),
        "aescbc_encryption_secret": reader.string("secrets.aescbcencryptionsecret", required=False),
    }
    if not (bundle_args["secretbox_encryption_secret"] or bundle_args["aescbc_encryption_secret"]):
        reader.problems.append("secrets.secretboxencryptionsecret: missing")
    if reader.problems:
        raise SecretsError(
            f"{source}: invalid secrets bundle: " + "; ".join(reader.problems),
            hint="is this a secrets.yaml from 'hk8s create' or 'talosctl gen secrets'?",
        )
    assert sa_pem is not None and bootstrap is not None and trustd is not None
    return SecretsBundle(
        bootstrap_token=bootstrap,
        trustd_token=trustd,
        etcd_ca=_must(pairs["etcd"]),
        k8s_ca=_must(pairs["k8s"]),
        k8s_aggregator_ca=_must(pairs["k8saggregator"]),
        service_account_key_pem=sa_pem,
        os_ca=_must(pairs["os"]),
        **bundle_args,
    )


class _Reader:
    """Walks the parsed YAML and collects every problem instead of stopping at the first."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.problems: list[str] = []

    def _get(self, dotted: str) -> object:
        node: object = self.doc
        for part in dotted.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def string(self, dotted: str, *, required: bool = True) -> str | None:
        value = self._get(dotted)
        if value is None or value == "":
            if required:
                self.problems.append(f"{dotted}: missing")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{dotted}: expected a string")
            return None
        return value

    def token(self, dotted: str) -> str | None:
        value = self.string(dotted)
        if value is not None and not TOKEN_PATTERN.match(value):
            self.problems.append(f"{dotted}: expected a token like 'abcdef.0123456789abcdef'")
            return None
        return value

    def pem(self, dotted: str) -> bytes | None:
        value = self.string(dotted)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            self.problems.append(f"{dotted}: not valid base64")
            return None

    def key(self, dotted: str) -> bytes | None:
        pem = self.pem(dotted)
        if pem is None:
            return None
        try:
            # Only the key's type is checked here: the one key read this way is the
            # service-account key, which only kube-apiserver and the controller manager use
            # (they load it in full on the nodes). Checking an RSA-4096 key's primes would add
            # half a second to every hk8s command.
            key_algorithm(load_private_key(pem, check_rsa=False))
        except SecretsError as exc:
            self.problems.append(f"{dotted}: {exc.message}")
            return None
        return pem

    def pair(self, name: str) -> CertAndKey | None:
        crt = self.pem(f"certs.{name}.crt")
        key = self.pem(f"certs.{name}.key")
        if crt is None or key is None:
            return None
        try:
            pair = CertAndKey.from_pem(crt, key)
        except SecretsError as exc:
            self.problems.append(f"certs.{name}: {exc.message}")
            return None
        try:
            is_ca = pair.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            self.problems.append(f"certs.{name}: certificate is not a CA")
            return None
        return pair


def _must(pair: CertAndKey | None) -> CertAndKey:
    assert pair is not None
    return pair


def _pair(pair: CertAndKey) -> dict[str, str]:
    return {"crt": _b64(pair.cert_pem), "key": _b64(pair.key_pem)}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _random_b64() -> str:
    return base64.b64encode(os.urandom(_RANDOM_SIZE)).decode("ascii")
