"""What Helm has installed, read from its release Secrets (helm 3's default storage driver).

Helm stores each revision of a release as a Secret ``sh.helm.release.v1.<release>.v<N>``
labelled ``owner=helm, name=<release>, status=deployed|superseded|..., version=<N>``, whose
``data.release`` is the release JSON, gzipped and base64-encoded (then base64-encoded again as
all Secret data): helm.sh/helm/v3 ``pkg/storage/driver/secrets.go`` and ``util.go``
(``encodeRelease``). The JSON's ``chart.metadata.version`` is the chart version installed.

>>> secrets = await kube.list("v1", "Secret", namespace="kube-system",
...                           label_selector=DEPLOYED_RELEASES)
>>> deployed_chart_versions(secrets)
{'cilium': '1.20.2', 'hcloud-cloud-controller-manager': '1.35.0'}
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["DEPLOYED_RELEASES", "deployed_chart_versions"]

# The label selector of the Secrets of releases' current revisions.
DEPLOYED_RELEASES = "owner=helm,status=deployed"
_GZIP_MAGIC = b"\x1f\x8b\x08"


def deployed_chart_versions(secrets: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Release name -> chart version of its deployed revision (the newest, if several).

    Secrets that are not readable Helm releases are skipped: they are not hk8s' to judge.
    """
    found: dict[str, tuple[int, str]] = {}
    for secret in secrets:
        labels = (secret.get("metadata") or {}).get("labels") or {}
        release = _decode((secret.get("data") or {}).get("release"))
        if release is None or not labels.get("name"):
            continue
        version = ((release.get("chart") or {}).get("metadata") or {}).get("version")
        revision = int(release.get("version") or labels.get("version") or 0)
        name = str(labels["name"])
        if isinstance(version, str) and revision >= found.get(name, (-1, ""))[0]:
            found[name] = (revision, version)
    return {name: version for name, (_, version) in found.items()}


def _decode(data: object) -> dict[str, Any] | None:
    if not isinstance(data, str):
        return None
    try:
        blob = base64.b64decode(base64.b64decode(data, validate=True), validate=True)
        if blob.startswith(_GZIP_MAGIC):
            blob = gzip.decompress(blob)
        value = json.loads(blob)
    except (binascii.Error, ValueError, OSError, EOFError):
        return None
    return value if isinstance(value, dict) else None
