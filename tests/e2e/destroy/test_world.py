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

    result = hk8s(threaded, "-v", "destroy", "--yes", "-f", str(configs["demo"]))

    assert result.returncode == 0, result.stderr[-3000:]
    assert "delete Service default/web" in result.stderr  # -v: a line per step
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


def _protection(threaded: ThreadedWorld, cluster: str) -> dict[str, bool]:
    """``kind/name`` -> delete protection of the cluster's servers, load balancers, networks."""
    state = threaded.world.hcloud.state

    def read() -> dict[str, bool]:
        stores = {
            "server": state.servers,
            "load-balancer": state.load_balancers,
            "network": state.networks,
        }
        return {
            f"{kind}/{r.name}": r.protection_delete
            for kind, store in stores.items()
            for r in store.values()
            if r.labels.get("cluster") == cluster
        }

    return threaded.call(read)


def test_protection_blocks_destroy_until_create_lifts_it(
    threaded: ThreadedWorld, tmp_path: Path
) -> None:
    config = tmp_path / "cluster.yaml"
    base = CONFIG.format(name="demo", factory=threaded.world.factory_url)
    base += "load_balancer:\n  enabled: true\n"
    config.write_text(base + "protection: true\n")
    created = hk8s(threaded, "create", "-f", str(config))
    if created.returncode != 0:  # a starved machine can miss a boot deadline: converge again
        created = hk8s(threaded, "create", "-f", str(config))
    assert created.returncode == 0, created.stderr[-3000:]
    assert _protection(threaded, "demo") == {
        "server/demo-cp-1": True,
        "server/demo-workers-1": True,
        "load-balancer/demo-api": True,
        "network/demo": True,
    }
    stats = threaded.world.hcloud.stats
    threaded.call(stats.reset)

    # The config refuses; without it (--name, as CI cleans up) Hetzner's protection does.
    refused = hk8s(threaded, "destroy", "--yes", "-f", str(config))
    assert refused.returncode == 1 and "protection: true" in refused.stderr
    blocked = hk8s(threaded, "destroy", "--yes", "--name", "demo")
    assert blocked.returncode == 1, blocked.stderr[-3000:]
    assert "4 resource(s) are protected against deletion" in blocked.stderr
    assert "nothing was deleted" in blocked.stderr and "protection: false" in blocked.stderr
    assert threaded.call(lambda: stats.mutating) == 0
    assert all(_protection(threaded, "demo").values())

    # protection: false + create lifts it (and changes nothing else), then destroy goes.
    config.write_text(base + "protection: false\n")
    lifted = hk8s(threaded, "create", "-f", str(config))
    assert lifted.returncode == 0, lifted.stderr[-3000:]
    changed = threaded.call(
        lambda: sorted(r.route for r in stats.log if r.method != "GET" and r.status < 300)
    )
    assert changed == [
        "/load_balancers/{id}/actions/change_protection",
        "/networks/{id}/actions/change_protection",
        "/servers/{id}/actions/change_protection",
        "/servers/{id}/actions/change_protection",
    ]
    assert not any(_protection(threaded, "demo").values())
    destroyed = hk8s(threaded, "destroy", "--yes", "-f", str(config))
    assert destroyed.returncode == 0, destroyed.stderr[-3000:]
    assert _protection(threaded, "demo") == {}
