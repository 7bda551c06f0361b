"""talosconfig files, in the format ``talosctl`` reads (``pkg/machinery/client/config``).

::

    context: demo
    contexts:
        demo:
            endpoints: [203.0.113.10]
            nodes: [10.0.1.2]
            ca: <base64 PEM of the OS CA cert>
            crt: <base64 PEM of the client cert>
            key: <base64 PEM of the client key>

The client cert is what ``talosctl gen config`` makes: ``O=os:admin``, clientAuth, one year,
an Ed25519 key under ``ED25519 PRIVATE KEY`` (the OS CA is Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.errors import SecretsError
from hk8s.pki._files import write_private_file
from hk8s.pki._issue import ADMIN_CERT_VALIDITY, TALOS_ADMIN_ROLE, issue_talos_client_cert

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from hk8s.pki._certs import CertAndKey

__all__ = [
    "Talosconfig",
    "generate_talosconfig",
    "load_talosconfig",
    "parse_talosconfig",
    "render_talosconfig",
    "write_talosconfig",
]


@dataclass(frozen=True)
class Talosconfig:
    """One context of a talosconfig: where to connect and with which identity."""

    context: str
    endpoints: tuple[str, ...]
    nodes: tuple[str, ...]
    ca_pem: bytes
    crt_pem: bytes
    key_pem: bytes


def generate_talosconfig(
    cluster: str,
    os_ca: CertAndKey,
    *,
    endpoints: Sequence[str],
    nodes: Sequence[str] = (),
    now: dt.datetime | None = None,
    roles: Sequence[str] = (TALOS_ADMIN_ROLE,),
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> Talosconfig:
    """A fresh admin identity for ``cluster`` signed by the bundle's OS CA.

    >>> cfg = generate_talosconfig("demo", bundle.os_ca, endpoints=["203.0.113.10"])
    >>> write_talosconfig("talosconfig", cfg)
    """
    client = issue_talos_client_cert(
        os_ca, now=now or dt.datetime.now(dt.UTC), roles=roles, validity=validity
    )
    return Talosconfig(
        context=cluster,
        endpoints=tuple(endpoints),
        nodes=tuple(nodes),
        ca_pem=os_ca.cert_pem,
        crt_pem=client.cert_pem,
        key_pem=client.key_pem,
    )


def render_talosconfig(config: Talosconfig) -> str:
    """The YAML text talosctl reads; ``nodes`` is omitted when empty, as talosctl does."""
    context: dict[str, Any] = {"endpoints": list(config.endpoints)}
    if config.nodes:
        context["nodes"] = list(config.nodes)
    context["ca"] = _b64(config.ca_pem)
    context["crt"] = _b64(config.crt_pem)
    context["key"] = _b64(config.key_pem)
    doc = {"context": config.context, "contexts": {config.context: context}}
    return yaml.safe_dump(doc, sort_keys=False, indent=4, width=1 << 20)


def write_talosconfig(
    path: str | os.PathLike[str], config: Talosconfig, *, overwrite: bool = True
) -> Path:
    """Write with mode 0600, atomically (it holds a private key)."""
    return write_private_file(path, render_talosconfig(config), overwrite=overwrite)


def load_talosconfig(path: str | os.PathLike[str], context: str | None = None) -> Talosconfig:
    """Read a talosconfig written by hk8s or talosctl; ``context`` defaults to the current one."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(f"cannot read talosconfig {path}: {exc}") from exc
    return parse_talosconfig(text, context=context, source=str(path))


def parse_talosconfig(
    text: str, *, context: str | None = None, source: str = "talosconfig"
) -> Talosconfig:
    """Parse talosconfig text; the deprecated ``target`` key counts as an endpoint (upstream)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SecretsError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("contexts"), dict):
        raise SecretsError(f"{source}: not a talosconfig (no 'contexts' mapping)")
    name = context or doc.get("context")
    contexts: dict[str, Any] = doc["contexts"]
    if not isinstance(name, str) or not name:
        raise SecretsError(f"{source}: no current context; pick one of {sorted(contexts)}")
    entry = contexts.get(name)
    if not isinstance(entry, dict):
        raise SecretsError(
            f"{source}: context {name!r} not found",
            hint=f"available contexts: {', '.join(sorted(contexts)) or 'none'}",
        )
    endpoints = _strings(entry.get("endpoints"), f"{source}: contexts.{name}.endpoints")
    if entry.get("target"):
        endpoints.append(str(entry["target"]))
    return Talosconfig(
        context=name,
        endpoints=tuple(endpoints),
        nodes=tuple(_strings(entry.get("nodes"), f"{source}: contexts.{name}.nodes")),
        ca_pem=_pem(entry, "ca", source, name),
        crt_pem=_pem(entry, "crt", source, name),
        key_pem=_pem(entry, "key", source, name),
    )


def _strings(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SecretsError(f"{where}: expected a list of strings")
    return list(value)


def _pem(entry: dict[str, Any], key: str, source: str, name: str) -> bytes:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise SecretsError(f"{source}: contexts.{name}.{key} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise SecretsError(f"{source}: contexts.{name}.{key} is not valid base64") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
