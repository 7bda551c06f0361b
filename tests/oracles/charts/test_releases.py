"""Helm's own release storage judges how hk8s reads Helm's release Secrets and how the
simulator writes them.

``doctor`` and ``status`` tell which chart version each addon runs by decoding the Secrets Helm
stores per release revision (``hk8s.providers.k8s.deployed_chart_versions``); the simulated
world's helm writes those Secrets (``hk8s.sim.machines._helm``). Both were written from reading
Helm's storage driver. Here the driver itself (``main.go``: helm.sh/helm/v3 ``pkg/storage``
over client-go's fake clientset) writes the Secrets hk8s must read, and reads the ones the
simulator writes, as ``helm history`` and ``helm upgrade`` would.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hk8s.providers.k8s import DEPLOYED_RELEASES, deployed_chart_versions
from hk8s.sim.machines._helm import _record_release
from oracle_support import build_oracle  # type: ignore[import-not-found]

HERE = Path(__file__).parent
NAMESPACE = "kube-system"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def oracle() -> Path:
    return build_oracle(HERE, "helm-release-oracle")


def helm_storage(oracle: Path, *args: str, given: object) -> Any:
    done = subprocess.run(
        [str(oracle), *args], input=json.dumps(given), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"Helm's storage refused: {done.stderr.strip()}"
    return json.loads(done.stdout)


def revision(name: str, number: int, status: str, chart: str, version: str) -> Obj:
    return {
        "name": name,
        "revision": number,
        "status": status,
        "chart": chart,
        "chart_version": version,
        "app_version": version,
    }


def selected(secrets: list[Obj], selector: str) -> list[Obj]:
    """What the API server answers a list with the equality ``selector``."""
    wanted = dict(term.split("=", 1) for term in selector.split(","))
    return [s for s in secrets if wanted.items() <= s["metadata"]["labels"].items()]


def test_hk8s_reads_the_chart_versions_helm_stores(oracle: Path) -> None:
    stored = helm_storage(
        oracle,
        "write",
        NAMESPACE,
        given=[
            revision("cilium", 1, "superseded", "cilium", "1.20.1"),
            revision("cilium", 2, "deployed", "cilium", "1.20.2"),
            revision("metrics-server", 1, "failed", "metrics-server", "3.13.1"),
            revision("metrics-server", 2, "deployed", "metrics-server", "3.13.0"),
            revision("hcloud-csi", 1, "pending-install", "hcloud-csi", "2.22.1"),
        ],
    )
    assert len(stored) == 5
    found = deployed_chart_versions(selected(stored, DEPLOYED_RELEASES))
    assert found == {"cilium": "1.20.2", "metrics-server": "3.13.0"}


class _Api:
    """The part of the Kubernetes API the simulator's helm stores releases through."""

    def __init__(self) -> None:
        self.secrets: dict[str, Obj] = {}

    async def get(self, path: str, labelSelector: str) -> Obj:
        return {"items": selected(list(self.secrets.values()), labelSelector)}

    async def replace(self, path: str, body: Obj) -> Obj:
        self.secrets[body["metadata"]["name"]] = body
        return body

    async def create(self, path: str, body: Obj) -> Obj:
        self.secrets[body["metadata"]["name"]] = body
        return body


def test_helm_reads_the_releases_the_simulator_stores(oracle: Path) -> None:
    api = _Api()
    for number, version in ((1, "1.20.1"), (2, "1.20.2")):
        install = _record_release(
            api,  # type: ignore[arg-type]
            "cilium",
            NAMESPACE,
            "cilium",
            version,
            number,
            {"ipam": {"mode": "kubernetes"}},
            "2026-12-07T10:00:00Z",
        )
        asyncio.run(install)
    secrets = [
        {
            **s,
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {**s["metadata"], "namespace": NAMESPACE},
        }
        for s in api.secrets.values()
    ]
    read = helm_storage(oracle, "read", NAMESPACE, "cilium", given=secrets)
    assert read == {
        "name": "cilium",
        "namespace": NAMESPACE,
        "revision": 2,
        "chart": "cilium",
        "chart_version": "1.20.2",
        "statuses": {"1": "superseded", "2": "deployed"},
    }
