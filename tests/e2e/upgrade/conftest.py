"""``hk8s create`` then ``hk8s upgrade`` as subprocesses against the simulated world.

The world runs in a background thread; tests read what the nodes run straight from the
simulator (Talos release on each disk, the Kubernetes API's Node objects) and record the
Talos RPCs and Kubernetes writes the upgrade makes, so a re-run can be shown to make none.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from e2e_support import AuditedList, WorldRun, check_ok
from hk8s.cli._main import run
from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SPEED = 100.0


@dataclass
class UpgradeWorld(WorldRun):
    def write_config(self, text: str) -> None:
        self.write_dedented(text, f"  image_factory: {self.world.factory_url}\n")

    def hk8s(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``hk8s <args> -f cluster.yaml`` in this process (the simulator's environment is
        exported by the fixture), saving an interpreter start and hk8s' imports per run;
        ``check``: exit 0 or fail showing its output."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([*args, "-f", str(self.config)])
        result = subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
        self.outputs += [result.stdout, result.stderr]
        if check:
            check_ok(result)
        return result

    # -- what the simulated nodes run
    def talos_versions(self) -> dict[str, str]:
        """Server name -> the Talos release its disk boots."""
        fleet = self.world.fleet
        return self.threaded.call(
            lambda: {n.server_name: n.disk.image.version for n in fleet.nodes.values()}
        )

    def talos_platforms(self) -> dict[str, str]:
        """Server name -> the ``talos.platform`` its installed boot assets carry."""
        fleet = self.world.fleet
        return self.threaded.call(
            lambda: {n.server_name: n.disk.platform for n in fleet.nodes.values()}
        )

    def kube_nodes(self) -> dict[str, dict[str, Any]]:
        """Node objects of the cluster's Kubernetes API, by name."""
        return {n["metadata"]["name"]: n for n in self.kube_items("/api/v1/nodes")}

    def kubelet_versions(self) -> dict[str, str]:
        return {k: v["status"]["nodeInfo"]["kubeletVersion"] for k, v in self.kube_nodes().items()}

    def static_pod_images(self) -> dict[str, str]:
        """Control-plane mirror pod name -> its image's version tag."""
        pods = self.kube_items(
            "/api/v1/namespaces/kube-system/pods", labelSelector="tier=control-plane"
        )
        return {
            p["metadata"]["name"]: p["spec"]["containers"][0]["image"].rpartition(":")[2]
            for p in pods
            if p["metadata"].get("deletionTimestamp") is None
        }

    def etcd_members(self) -> list[str]:
        def read() -> list[str]:
            [cluster] = self.world.fleet.clusters.values()
            return sorted(m.hostname for m in cluster.members.values())

        return self.threaded.call(read)

    # -- the simulated Hetzner project (``reset_stats``/``mutating``: ``WorldRun``)
    def set_failed_upgrades(self, patterns: list[str]) -> None:
        faults = self.world.fleet.faults
        self.threaded.call(lambda: setattr(faults, "failed_upgrades", list(patterns)))

    def spy(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
        """From now on, record Talos Upgrade and ApplyConfiguration RPCs (by server), Node
        cordons/uncordons and evictions the Kubernetes API serves, in order."""
        from hk8s.sim.talos._api import NodeCalls

        seen: dict[str, list[str]] = {"upgrade": [], "apply": [], "node": [], "evict": []}
        for method, bucket in (("upgrade", "upgrade"), ("apply_configuration", "apply")):
            original = getattr(NodeCalls, method)

            async def spy_call(calls: Any, req: Any, _o: Any = original, _b: str = bucket) -> Any:
                seen[_b].append(calls.node.server_name)
                return await _o(calls, req)

            monkeypatch.setattr(NodeCalls, method, spy_call)

        seen["node"] = AuditedList(self.cordons)
        seen["evict"] = AuditedList(self.evictions)
        seen["node"].clear()
        seen["evict"].clear()
        return seen


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UpgradeWorld]:
    with World.start_in_thread(speed=SPEED) as threaded:
        for name, value in {**threaded.env, "NO_COLOR": "1"}.items():
            monkeypatch.setenv(name, value)
        yield UpgradeWorld(threaded, dict(threaded.env), tmp_path)
