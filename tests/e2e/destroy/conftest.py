"""Two clusters side by side in one simulated Hetzner project, and hk8s as a subprocess.

Until the full simulated world runs ``hk8s create``, a cluster is what ``hk8s infra`` makes
plus servers created through the hcloud client with exactly the labels ``create`` gives
them (``cluster=<name>,managed-by=hk8s,role=...,pool=...``), an SSH key of the cluster,
and a load balancer as the Hetzner CCM would make it for a Service (label
``hcloud-ccm/service-uid``, attached to the cluster's network). That is what destroy finds.
"""

from __future__ import annotations

import subprocess
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import hcloud
import pytest
from hcloud.images import Image
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.locations import Location
from hcloud.server_types import ServerType

from e2e_support import child_env, hk8s_argv, run_killed_after
from hk8s.sim.hcloud import FaultSpec, ThreadedSim, run_in_thread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SPEED = 100.0

CONFIG = """\
name: {name}
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 2
firewall:
  kube_api_sources: [198.51.100.0/24]
  talos_api_sources: [198.51.100.0/24]
"""


@dataclass
class Project:
    """The simulated project, two cluster configs, and ways to run hk8s against them."""

    threaded: ThreadedSim
    env: dict[str, str]
    configs: dict[str, Path]

    @property
    def sim(self) -> Any:
        return self.threaded.sim

    def client(self) -> hcloud.Client:
        # Actions take simulated seconds: poll them often (the library sleeps in between).
        return hcloud.Client(
            token=self.sim.token, api_endpoint=self.sim.endpoint, poll_interval=0.05
        )

    def talos_snapshot(self, server_name: str) -> int:
        """A snapshot labelled as ``hk8s image build`` labels them; returns its id."""
        client = self.client()
        server = client.servers.get_by_name(server_name)
        assert server is not None
        # A server is locked while its actions run (creation, the firewall applied to it).
        for action in client.servers.get_actions(server, status=["running"]):
            action.wait_until_finished()
        labels = {"os": "talos", "arch": "amd64", "managed-by": "hk8s"}
        created = client.servers.create_image(
            server, description=f"talos from {server_name}", type="snapshot", labels=labels
        )
        created.action.wait_until_finished()
        return int(created.image.id)

    def hk8s(self, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            hk8s_argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL if stdin is None else stdin,
        )

    def hk8s_killed_after(self, mutations: int, *args: str) -> int:
        """Run hk8s and SIGKILL it the moment the simulator has served ``mutations``
        mutating requests (before their answers reach it). Returns the exit status."""
        argv = hk8s_argv(*args)
        api = self.sim.api
        return run_killed_after(
            self.threaded, api, argv, self.env, mutations, stdin=subprocess.DEVNULL
        )

    def faults(self, spec: dict[str, Any]) -> None:
        self.threaded.call(lambda: self.sim.set_faults(FaultSpec.parse(spec)))

    def reset_stats(self) -> None:
        self.threaded.call(self.sim.stats.reset)

    def stats(self) -> dict[str, Any]:
        return self.threaded.call(lambda: self.sim.stats.snapshot(with_log=True))

    def inventory(self) -> dict[str, dict[str, tuple[int, dict[str, str]]]]:
        """Every resource by kind: name -> (id, labels), read on the simulator's loop."""

        def read() -> dict[str, dict[str, tuple[int, dict[str, str]]]]:
            state = self.sim.state
            stores = {
                "servers": state.servers,
                "networks": state.networks,
                "firewalls": state.firewalls,
                "load_balancers": state.load_balancers,
                "placement_groups": state.placement_groups,
                "ssh_keys": state.ssh_keys,
                "volumes": state.volumes,
            }
            return {
                kind: {r.name: (r.id, dict(r.labels)) for r in store.values()}
                for kind, store in stores.items()
            }

        return self.threaded.call(read)

    def owned_by(self, cluster: str) -> list[str]:
        """``kind/name`` of everything labelled as ``cluster``'s or made by its CCM."""
        found = []
        for kind, items in self.inventory().items():
            for name, (_, labels) in items.items():
                ours = labels.get("cluster") == cluster and labels.get("managed-by") == "hk8s"
                ccm = labels.get("hcloud-ccm/service-uid", "").startswith(cluster)
                if ours or ccm:
                    found.append(f"{kind}/{name}")
        return sorted(found)

    def run_infra(self, *names: str) -> None:
        """``hk8s infra`` for several clusters at once (as separate processes)."""
        procs = [
            subprocess.Popen(
                hk8s_argv("infra", "-f", str(self.configs[name])),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in names
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err

    def make_cluster(self, name: str) -> None:
        """What ``create`` adds to ``hk8s infra``: servers, an SSH key, a CCM load balancer."""
        client = self.client()
        [network] = client.networks.get_all(name=name)
        groups = {
            g.name: g for g in client.placement_groups.get_all(label_selector=f"cluster={name}")
        }
        labels = {"cluster": name, "managed-by": "hk8s"}
        key = client.ssh_keys.create(
            f"{name}-admin", public_key=_public_key(), labels={**labels, "component": "ssh-key"}
        )
        pools = [("cp", "control-plane", 3), ("workers", "worker", 2)]
        for pool, role, count in pools:
            for n in range(1, count + 1):
                client.servers.create(
                    f"{name}-{pool}-{n}",
                    server_type=ServerType(name="cx23"),
                    image=Image(name="debian-12"),
                    location=Location(name="fsn1"),
                    networks=[network],
                    placement_group=groups[f"{name}-{pool}-pg-1"],
                    ssh_keys=[key],
                    labels={**labels, "role": role, "pool": pool},
                )
        client.load_balancers.create(
            f"a{name}svc1",
            load_balancer_type=LoadBalancerType(name="lb11"),
            location=Location(name="fsn1"),
            network=network,
            labels={"hcloud-ccm/service-uid": f"{name}-uid-1"},
        )


def _public_key() -> str:
    """A fresh OpenSSH ed25519 public key (the API refuses two keys of one fingerprint)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """Clusters ``demo`` and ``prod``, plus an unlabelled server named like demo's."""
    with run_in_thread(speed=SPEED) as threaded:
        env = child_env(threaded.sim.env())
        configs = {}
        for name in ("demo", "prod"):
            (tmp_path / name).mkdir()
            config = tmp_path / name / "cluster.yaml"
            config.write_text(textwrap.dedent(CONFIG.format(name=name)))
            configs[name] = config
        project = Project(threaded, env, configs)
        project.run_infra(*configs)
        for name in configs:
            project.make_cluster(name)
        project.client().servers.create(
            "demo-cp-9",
            server_type=ServerType(name="cx23"),
            image=Image(name="debian-12"),
            location=Location(name="fsn1"),
            labels={"cluster": "demo"},  # not managed-by=hk8s: never destroy's
        )
        yield project
