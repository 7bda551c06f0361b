"""Day-2 commands (``hk8s etcd``, ``doctor``, ``node``) against one simulated cluster.

``hk8s create`` builds a 3+1 cluster once per test module (it costs most of the time); the
tests then act on it in order, reading the result straight from the simulator: the Kubernetes
API's objects, the etcd members, the Talos nodes.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from e2e_support import WorldRun, check_ok
from hk8s.cli._main import run
from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

SPEED = 100.0

CLUSTER = """\
name: demo
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 1
"""


@dataclass
class Day2World(WorldRun):
    def hk8s(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``hk8s <args> -f cluster.yaml`` in this process; ``check``: exit 0 or fail."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run([*args, "-f", str(self.config)])
        result = subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
        self.outputs += [result.stdout, result.stderr]
        if check:
            check_ok(result)
        return result

    def put_configmap(self, name: str, data: dict[str, str]) -> int:
        """Create a ConfigMap in ``default``; returns its resourceVersion (etcd revision)."""
        obj = {"metadata": {"name": name, "namespace": "default"}, "data": data}
        created = self.kube_create("/api/v1/namespaces/default/configmaps", obj)
        return int(created["metadata"]["resourceVersion"])

    def etcd_members(self) -> list[str]:
        def read() -> list[str]:
            [cluster] = self.world.fleet.clusters.values()
            return sorted(m.hostname for m in cluster.members.values())

        return self.threaded.call(read)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day2World]:
    patch = pytest.MonkeyPatch()
    with World.start_in_thread(speed=SPEED) as threaded:
        for name, value in {**threaded.env, "NO_COLOR": "1"}.items():
            patch.setenv(name, value)
        created = Day2World(threaded, dict(threaded.env), tmp_path_factory.mktemp("day2"))
        created.write_dedented(CLUSTER, f"talos:\n  image_factory: {threaded.world.factory_url}\n")
        created.hk8s("create")
        try:
            yield created
        finally:
            patch.undo()
