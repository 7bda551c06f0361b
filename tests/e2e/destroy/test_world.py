"""Destroy one of two clusters made by ``hk8s create`` in the whole simulated world: the
other stays healthy, the destroyed one's LoadBalancer Services go first, nothing of it is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from hk8s.sim.world import World

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hk8s.sim.world import ThreadedWorld

pytestmark = pytest.mark.e2e

SPEED = 100.0
CONFIG = """\
name: {name}
location: fsn1
control_plane:
  count: 1
workers:
  - name: workers
    count: 1
talos:
  image_factory: {factory}
"""


@pytest.fixture
def threaded() -> Iterator[ThreadedWorld]:
    with World.start_in_thread(speed=SPEED) as threaded:
        yield threaded


def hk8s(threaded: ThreadedWorld, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **threaded.env, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "hk8s", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def add_load_balancer_service(kubeconfig: Path) -> None:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "selector": {"app": "web"}},
    }
    api.create_namespaced_service("default", body)


def test_destroy_one_created_cluster_the_other_stays_healthy(
    threaded: ThreadedWorld, tmp_path: Path
) -> None:
    configs = {}
    for name in ("demo", "prod"):
        (tmp_path / name).mkdir()
        configs[name] = tmp_path / name / "cluster.yaml"
        configs[name].write_text(CONFIG.format(name=name, factory=threaded.world.factory_url))
        created = hk8s(threaded, "create", "-f", str(configs[name]))
        if created.returncode != 0:
            # Setup, not the subject: on a starved machine a simulated node can miss create's
            # boot deadline (wall seconds at this speed); create converges when run again.
            created = hk8s(threaded, "create", "-f", str(configs[name]))
        assert created.returncode == 0, created.stderr[-3000:]
    add_load_balancer_service(tmp_path / "demo" / "kubeconfig")

    result = hk8s(threaded, "destroy", "--yes", "-f", str(configs["demo"]))

    assert result.returncode == 0, result.stderr[-3000:]
    assert "delete Service default/web" in result.stderr
    state = threaded.world.hcloud.state
    left = threaded.call(
        lambda: [
            r.name
            for store in (
                state.servers,
                state.networks,
                state.firewalls,
                state.load_balancers,
                state.placement_groups,
                state.ssh_keys,
            )
            for r in store.values()
            if r.labels.get("cluster") == "demo"
        ]
    )
    assert left == []
    health = hk8s(threaded, "health", "-f", str(configs["prod"]))
    assert health.returncode == 0, health.stdout + health.stderr
    assert "FAIL" not in health.stdout
