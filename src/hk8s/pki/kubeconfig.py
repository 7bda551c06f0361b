"""Admin kubeconfigs as ``talosctl kubeconfig`` produces them (siderolabs/talos
``pkg/kubeconfig/generate.go``): cluster ``<cluster>``, user and context ``admin@<cluster>``,
namespace ``default``, a client cert ``CN=admin, O=system:masters`` from the Kubernetes CA.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.pki._files import write_private_file
from hk8s.pki._issue import ADMIN_CERT_VALIDITY, issue_kube_admin_cert

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from hk8s.pki._certs import CertAndKey

__all__ = ["generate_admin_kubeconfig", "write_kubeconfig"]


def generate_admin_kubeconfig(
    cluster: str,
    k8s_ca: CertAndKey,
    server: str,
    *,
    now: dt.datetime | None = None,
    validity: dt.timedelta = ADMIN_CERT_VALIDITY,
) -> str:
    """kubeconfig YAML for ``server`` (e.g. ``https://203.0.113.10:6443``).

    >>> text = generate_admin_kubeconfig("demo", bundle.k8s_ca, "https://203.0.113.10:6443")
    """
    client = issue_kube_admin_cert(k8s_ca, now=now or dt.datetime.now(dt.UTC), validity=validity)
    user = f"admin@{cluster}"
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(k8s_ca.cert_pem),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert_pem),
                    "client-key-data": _b64(client.key_pem),
                },
            }
        ],
        "contexts": [
            {"name": user, "context": {"cluster": cluster, "namespace": "default", "user": user}}
        ],
        "current-context": user,
    }
    return yaml.safe_dump(doc, sort_keys=False, width=1 << 20)


def write_kubeconfig(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    """Write with mode 0600, atomically (it holds a private key)."""
    return write_private_file(path, text, overwrite=overwrite)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
