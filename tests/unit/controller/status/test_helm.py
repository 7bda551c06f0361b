"""Addon versions in ``hk8s status`` come from Helm 3's release Secrets, decoded as helm does."""

from __future__ import annotations

import base64
import gzip
import json

from hk8s.controller import decode_helm_release


def helm_secret(release: dict[str, object], *, gzipped: bool = True) -> dict[str, object]:
    """A release Secret as Kubernetes returns it: data base64 of helm's base64(gzip(json))."""
    raw = json.dumps(release).encode()
    blob = base64.b64encode(gzip.compress(raw) if gzipped else raw)
    return {"data": {"release": base64.b64encode(blob).decode()}}


def test_a_release_secret_gives_its_chart_and_version() -> None:
    release = {"name": "cilium", "chart": {"metadata": {"name": "cilium", "version": "1.18.4"}}}
    assert decode_helm_release(helm_secret(release)) == release
    assert decode_helm_release(helm_secret(release, gzipped=False)) == release


def test_anything_else_is_not_a_release() -> None:
    assert decode_helm_release({"data": {}}) is None
    assert decode_helm_release({"data": {"release": "not base64!"}}) is None
    assert decode_helm_release({"data": {"release": base64.b64encode(b"xx").decode()}}) is None
