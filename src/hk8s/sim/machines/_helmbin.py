"""Real Helm in the simulated world: the addon Job pods of charts whose sources it has run it.

An addon Job's container runs ``helm upgrade --install <release> <chart> --repo <url>
--version <v> ...`` (hk8s' ``manifests/addon-job.yaml``). Where the world has the chart's
sources at that version (``make kube`` unpacks them with ``tools/helm_build.py``: cilium,
metrics-server), the pod runs upstream Helm itself, at the release the Jobs run on real clusters
(``HELM_IMAGE``), against the cluster's real API server, authenticated as the pod's service
account with a token bound to the pod (the TokenRequest API, as the kubelet mounts one): the
chart's own templates, values schema and coalescing, the API server's validation and RBAC, and
Helm's release records. Only the chart's location differs: the repository is not reachable
here, so the chart comes from its unpacked sources instead of ``--repo``. Charts without
sources here (the Hetzner ones, other versions) are rendered by ``_charts`` (``_helm``).

The build lives in ``~/.cache/hk8s/helm/<release>/`` (``$XDG_CACHE_HOME`` honoured), or wherever
``HK8S_HELM_DIR`` points: ``helm`` and ``charts/<chart>-<version>/``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.config import HELM_IMAGE
from hk8s.sim.k8s import BinariesMissing
from hk8s.sim.k8s._binaries import cache_dir

if TYPE_CHECKING:
    from hk8s.sim.k8s import KubeClient

__all__ = ["HELM_DIR_ENV", "HELM_RELEASE", "HelmRun", "RealHelm", "find_helm"]

# The release the addon Jobs run (HELM_IMAGE's tag); tools/helm/go.mod pins the same (unit test).
HELM_RELEASE = "v" + HELM_IMAGE.rpartition(":")[2].lstrip("v")
HELM_DIR_ENV = "HK8S_HELM_DIR"
RUN_TIMEOUT = 120.0  # wall seconds for one helm run: a hang must end the pod, not the world
Obj = dict[str, Any]


@dataclass(frozen=True)
class HelmRun:
    """How one helm invocation ended: its exit code and what it printed (the pod's log)."""

    code: int
    output: str


@dataclass(frozen=True)
class RealHelm:
    """The built helm binary and the charts it has sources for, keyed (name, version); with
    ``server`` and ``ca_file``, the cluster's API server it runs against."""

    binary: Path
    charts: dict[tuple[str, str], Path]
    server: str = ""
    ca_file: str = ""
    home: str = ""  # kept between runs: the API discovery cache (each run's own when empty)

    def has(self, chart: str, version: str) -> bool:
        return (chart, version) in self.charts

    async def run(self, api: KubeClient, pod: Obj, argv: list[str], values: list[str]) -> HelmRun:
        """``helm <argv> --values <each of values>`` as ``pod``'s service account."""
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 3600,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token"
        token = (await api.create(path, request))["status"]["token"]
        with tempfile.TemporaryDirectory(prefix="hk8s-helm-") as folder:
            home = Path(folder)
            kubeconfig = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "in-cluster",
                        "cluster": {"server": self.server, "certificate-authority": self.ca_file},
                    }
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "in-cluster",
                        "context": {
                            "cluster": "in-cluster",
                            "user": account,
                            "namespace": meta["namespace"],
                        },
                    }
                ],
                "current-context": "in-cluster",
            }
            (home / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
            (home / "kubeconfig").chmod(0o600)
            files = []
            for index, text in enumerate(values):
                files += ["--values", str(home / f"values-{index}.yaml")]
                (home / f"values-{index}.yaml").write_text(text)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": self.home or folder,
                "KUBECONFIG": str(home / "kubeconfig"),
                "HELM_CACHE_HOME": str(home / "cache"),
                "HELM_CONFIG_HOME": str(home / "config"),
                "HELM_DATA_HOME": str(home / "data"),
            }
            proc = await asyncio.create_subprocess_exec(
                str(self.binary),
                *argv,
                *files,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                return HelmRun(1, f"Error: helm ran longer than {RUN_TIMEOUT:.0f} s\n")
        return HelmRun(proc.returncode or 0, out.decode(errors="replace"))


def find_helm() -> RealHelm:
    """The world's Helm and charts, or ``BinariesMissing`` saying how to build them."""
    folder = (
        Path(os.environ[HELM_DIR_ENV])
        if os.environ.get(HELM_DIR_ENV)
        else cache_dir(HELM_RELEASE, "helm")
    )
    binary = folder / "helm"
    if not os.access(binary, os.X_OK):
        raise BinariesMissing(
            f"the simulated world installs addons with Helm {HELM_RELEASE}, which is not built "
            f"in {folder}: run `make kube`, or point {HELM_DIR_ENV} at a folder holding helm "
            "and charts/"
        )
    charts = {}
    for chart in sorted((folder / "charts").glob("*/Chart.yaml")):
        meta = yaml.safe_load(chart.read_text())
        charts[(str(meta["name"]), str(meta["version"]))] = chart.parent
    return RealHelm(binary, charts)
