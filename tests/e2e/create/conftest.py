"""``hk8s create`` as a subprocess against the whole simulated world in a background thread.

Every run's stdout/stderr is kept, so a test can grep everything hk8s said (and every file it
wrote) for the Hetzner token. Faults, kills and spies act on the simulator's own objects.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from e2e_support import (
    AuditedList,
    WorldRun,
    check_ok,
    child_env,
    hk8s_argv,
    kill,
    observing,
    spawn,
)
from hk8s.sim.hcloud import FaultSpec
from hk8s.sim.world import World, WorldFaults

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e

SPEED = 100.0
TIMEOUT = 240


@dataclass
class CreateWorld(WorldRun):
    @property
    def token(self) -> str:
        return self.env["HCLOUD_TOKEN"]

    def write_config(self, text: str) -> None:
        self.write_dedented(text, f"talos:\n  image_factory: {self.world.factory_url}\n")

    def hk8s(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``hk8s <args> -f cluster.yaml``; ``check``: exit 0 or fail showing stderr."""
        result = subprocess.run(
            hk8s_argv(*args, "-f", str(self.config)),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        self.outputs += [result.stdout, result.stderr]
        if check:
            check_ok(result)
        return result

    def hk8s_killed_on_eviction(self, *args: str) -> tuple[int, dict[str, AuditedList]]:
        """Run hk8s and SIGKILL it right after the first pod eviction the API server grants
        (seen in its audit log). Returns the exit status and live views of the Nodes cordoned
        (names) and pods evicted from now on."""
        seen = {
            "cordon": AuditedList(
                lambda: [c.split()[1] for c in self.cordons() if c.startswith("cordon ")]
            ),
            "evict": AuditedList(self.evictions),
        }
        for view in seen.values():
            view.clear()
        proc = spawn([*args, "-f", str(self.config)], self.env)
        done = threading.Event()

        def kill_on_first_eviction() -> None:
            while not done.wait(0.02):
                if seen["evict"]:
                    kill(proc)
                    return

        watcher = threading.Thread(target=kill_on_first_eviction, daemon=True)
        watcher.start()
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            done.set()
            watcher.join()
        self.outputs += [out, err]
        return proc.returncode, seen

    def hk8s_killed_when(self, kill_when: Callable[[Any], bool], *args: str) -> int:
        """Run hk8s and SIGKILL it as soon as ``kill_when(record)`` is true for a request the
        simulated API served (before hk8s sees the answer). Returns the exit status."""
        proc = spawn([*args, "-f", str(self.config)], self.env)

        def observer(record: Any, request: Any, response: Any) -> None:
            if kill_when(record):
                kill(proc)

        with observing(self.threaded, self.world.hcloud.api, observer):
            out, err = proc.communicate(timeout=TIMEOUT)
            self.outputs += [out, err]
            return proc.returncode

    # -- the simulated Hetzner project
    def servers(self) -> dict[str, dict[str, str]]:
        """Every server by name, with its labels."""
        state = self.world.hcloud.state
        return self.threaded.call(lambda: {s.name: dict(s.labels) for s in state.servers.values()})

    def faults(self, spec: dict[str, Any]) -> None:
        self.threaded.call(lambda: self.world.hcloud.set_faults(FaultSpec.parse(spec)))

    def written_files(self) -> list[Path]:
        return [p for p in self.dir.rglob("*") if p.is_file()]


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., CreateWorld]]:
    """``make_world(faults={...})``: a world with the given fault file (``WorldFaults``)."""
    with contextlib.ExitStack() as stack:

        def make(faults: dict[str, Any] | None = None) -> CreateWorld:
            spec = WorldFaults.parse(faults) if faults else None
            threaded = stack.enter_context(World.start_in_thread(speed=SPEED, faults=spec))
            env = child_env(threaded.env)
            return CreateWorld(threaded, env, tmp_path)

        yield make


@pytest.fixture
def world(make_world: Callable[..., CreateWorld]) -> CreateWorld:
    return make_world()
