"""hk8s as a subprocess against a simulated Hetzner API running in a background thread."""

from __future__ import annotations

import http.server
import subprocess
import textwrap
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from e2e_support import child_env, hk8s_argv, run_killed_after
from hk8s.sim.hcloud import FaultSpec, ThreadedSim, run_in_thread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SPEED = 100.0
OPERATOR_IP = "203.0.113.7"

CONFIG = """\
name: demo
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 12
firewall:
  kube_api_sources: [current]
  talos_api_sources: [current, 198.51.100.0/24]
"""


class _MyIP(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(f"{OPERATOR_IP}\n".encode())

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="session")
def my_ip_url() -> Iterator[str]:
    """A what-is-my-IP service answering as icanhazip.com does (plain text)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MyIP)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@dataclass
class World:
    threaded: ThreadedSim
    env: dict[str, str]
    config: Path
    kill_after: list[int] = field(default_factory=list)

    @property
    def sim(self) -> Any:
        return self.threaded.sim

    def hk8s(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``hk8s <args> -f <config>`` to completion; the token never shows in its output."""
        result = subprocess.run(
            hk8s_argv(*args, "-f", str(config or self.config)),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert self.sim.token not in result.stdout + result.stderr
        return result

    def hk8s_killed_after(self, mutations: int, *args: str) -> int:
        """Run hk8s and SIGKILL it the moment the simulator has served ``mutations``
        mutating requests (before the answer reaches it). Returns the exit status."""
        argv = hk8s_argv(*args, "-f", str(self.config))
        return run_killed_after(self.threaded, self.sim.api, argv, self.env, mutations)

    def reset_stats(self) -> None:
        self.threaded.call(self.sim.stats.reset)

    def stats(self) -> dict[str, Any]:
        return self.threaded.call(lambda: self.sim.stats.snapshot(with_log=True))

    def faults(self, spec: dict[str, Any]) -> None:
        self.threaded.call(lambda: self.sim.set_faults(FaultSpec.parse(spec)))

    def resources(self) -> dict[str, list[Any]]:
        """Copies of what exists in the simulated project, by kind."""

        def read() -> dict[str, list[Any]]:
            state = self.sim.state
            return {
                "networks": list(state.networks.values()),
                "firewalls": list(state.firewalls.values()),
                "load_balancers": list(state.load_balancers.values()),
                "placement_groups": list(state.placement_groups.values()),
                "servers": list(state.servers.values()),
            }

        return self.threaded.call(read)

    def write_config(self, text: str) -> Path:
        self.config.write_text(textwrap.dedent(text))
        return self.config


@pytest.fixture
def world(tmp_path: Path, my_ip_url: str) -> Iterator[World]:
    with run_in_thread(speed=SPEED) as threaded:
        env = child_env(threaded.sim.env(), HK8S_MY_IP_URL=my_ip_url)
        config = tmp_path / "cluster.yaml"
        config.write_text(CONFIG)
        yield World(threaded, env, config)
