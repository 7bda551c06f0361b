"""Reading chart versions from Helm 3's release Secrets."""

from __future__ import annotations

import base64
import json

from hk8s.providers.k8s import deployed_chart_versions


def secret(name: str, data: str | None, revision: int = 1) -> dict[str, object]:
    labels = {"owner": "helm", "name": name, "status": "deployed", "version": str(revision)}
    return {"metadata": {"labels": labels}, "data": {"release": data} if data else {}}


def encoded(payload: object, *, gzipped: bool) -> str:
    import gzip

    raw = json.dumps(payload).encode()
    inner = base64.b64encode(gzip.compress(raw) if gzipped else raw)
    return base64.b64encode(inner).decode()


def test_gzipped_and_plain_payloads_are_read_and_the_newest_revision_wins() -> None:
    chart = {"chart": {"metadata": {"version": "1.20.1"}}, "version": 3}
    newer = {"chart": {"metadata": {"version": "1.20.2"}}, "version": 4}
    found = deployed_chart_versions([
        secret("cilium", encoded(newer, gzipped=True), 4),
        secret("cilium", encoded(chart, gzipped=False), 3),
    ])  # fmt: skip
    assert found == {"cilium": "1.20.2"}


def test_unreadable_secrets_are_skipped() -> None:
    assert deployed_chart_versions([
        secret("a", None),
        secret("b", "not base64!"),
        secret("c", base64.b64encode(b"garbage").decode()),
        secret("d", encoded(["not", "a", "release"], gzipped=True)),
        secret("e", encoded({"chart": {}}, gzipped=True)),
    ]) == {}  # fmt: skip
