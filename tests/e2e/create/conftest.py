"""``hk8s create`` as a subprocess against the whole simulated world in a background thread.

Every run's stdout/stderr is kept, so a test can grep everything hk8s said (and every file it
wrote) for the Hetzner token. Faults, kills and spies act on the simulator's own objects.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from hk8s.sim.hcloud import FaultSpec
from hk8s.sim.world import World, WorldFaults

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from hk8s.sim.world import ThreadedWorld

pytestmark = pytest.mark.e2e

SPEED = 100.0
TIMEOUT = 240


@dataclass
class CreateWorld:
    threaded: ThreadedWorld
    env: dict[str, str]
    dir: Path
    outputs: list[str] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.threaded.world

    @property
    def token(self) -> str:
        return self.env["HCLOUD_TOKEN"]

    @property
    def config(self) -> Path:
        return self.dir / "cluster.yaml"

    def write_config(self, text: str) -> None:
        factory = f"talos:\n  image_factory: {self.world.factory_url}\n"
        self.config.write_text(textwrap.dedent(text) + factory)

    def hk8s(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``hk8s <args> -f cluster.yaml``; ``check``: exit 0 or fail showing stderr."""
        result = subprocess.run(
            [sys.executable, "-m", "hk8s", *args, "-f", str(self.config)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        self.outputs += [result.stdout, result.stderr]
        if check:
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        return result

    def hk8s_killed_on_eviction(self, *args: str) -> tuple[int, dict[str, list[str]]]:
        """Run hk8s and SIGKILL it right after the first pod eviction it asks for."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "hk8s", *args, "-f", str(self.config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def kill() -> None:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)

        seen = self.spy_kube(on_evict=kill)
        out, err = proc.communicate(timeout=TIMEOUT)
        self.outputs += [out, err]
        return proc.returncode, seen

    def hk8s_killed_when(self, kill: Callable[[Any], bool], *args: str) -> int:
        """Run hk8s and SIGKILL it as soon as ``kill(record)`` is true for a request the
        simulated API served (before hk8s sees the answer). Returns the exit status."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "hk8s", *args, "-f", str(self.config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def observer(record: Any, request: Any, response: Any) -> None:
            if kill(record) and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)

        api = self.world.hcloud.api
        self.threaded.call(lambda: api.observers.append(observer))
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
            self.outputs += [out, err]
            return proc.returncode
        finally:
            self.threaded.call(lambda: api.observers.remove(observer))

    # -- the simulated Hetzner project
    def reset_stats(self) -> None:
        self.threaded.call(self.world.hcloud.stats.reset)

    def mutating(self) -> int:
        return int(self.threaded.call(lambda: self.world.hcloud.stats.mutating))

    def servers(self) -> dict[str, dict[str, str]]:
        """Every server by name, with its labels."""
        state = self.world.hcloud.state
        return self.threaded.call(lambda: {s.name: dict(s.labels) for s in state.servers.values()})

    def faults(self, spec: dict[str, Any]) -> None:
        self.threaded.call(lambda: self.world.hcloud.set_faults(FaultSpec.parse(spec)))

    def spy_kube(self, on_evict: Callable[[], None] | None = None) -> dict[str, list[str]]:
        """Record cordons and evictions the cluster's Kubernetes API serves from now on;
        ``on_evict`` runs after each eviction (e.g. to kill hk8s mid-drain)."""
        seen: dict[str, list[str]] = {"cordon": [], "evict": []}

        def install() -> None:
            [kube] = self.world.kubes.values()
            verbs = kube.cluster.verbs
            evict, patch = verbs.evict, verbs.patch

            def spy_evict(ns: str, name: str) -> Any:
                result = evict(ns, name)
                seen["evict"].append(f"{ns}/{name}")
                if on_evict is not None:
                    on_evict()
                return result

            def spy_patch(rt: Any, ns: str, name: str, body: Any, *a: Any, **k: Any) -> Any:
                result = patch(rt, ns, name, body, *a, **k)
                if getattr(rt, "kind", "") == "Node" and b"unschedulable" in bytes(body or b""):
                    seen["cordon"].append(name)
                return result

            verbs.evict, verbs.patch = spy_evict, spy_patch

        self.threaded.call(install)
        return seen

    def written_files(self) -> list[Path]:
        return [p for p in self.dir.rglob("*") if p.is_file()]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., CreateWorld]]:
    """``make_world(faults={...})``: a world with the given fault file (``WorldFaults``)."""
    with contextlib.ExitStack() as stack:

        def make(faults: dict[str, Any] | None = None) -> CreateWorld:
            spec = WorldFaults.parse(faults) if faults else None
            threaded = stack.enter_context(World.start_in_thread(speed=SPEED, faults=spec))
            env = {**os.environ, **threaded.env, "NO_COLOR": "1"}
            return CreateWorld(threaded, env, tmp_path)

        yield make


@pytest.fixture
def world(make_world: Callable[..., CreateWorld]) -> CreateWorld:
    return make_world()
