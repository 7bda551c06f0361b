"""Progress of a 3 + 97 create in the simulator, one worker of which never answers.

hk8s' own create (``hk8s.cli.create.converge``, the real clients) runs in-process against the
world, its events going to both the live view, drawn on a fixed-size virtual terminal (rich's
recording console), and the plain log a CI run would keep. The live view must fit the
terminal in every frame, count each phase and time it, and name the stuck node with how long
it has waited; the log must stay short without ``-v`` and say what it is still waiting for.

Affordable on a shared 2-core machine: the world runs 100 times faster than real time (as
every e2e test here does) and the run ends when the stuck node's boot timeout (10 simulated
minutes, 6 s of wall time) expires.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from e2e_support import child_env
from hk8s.cli._live import LiveReporter
from hk8s.cli._phases import PhaseBoard
from hk8s.cli._progress import PlainReporter, ticking
from hk8s.cli.create import converge
from hk8s.config import load_config
from hk8s.controller import CreateOptions
from hk8s.errors import Hk8sError
from hk8s.model import SystemClock
from hk8s.providers.hcloud import HcloudProvider
from hk8s.sim.world import World, WorldFaults

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hk8s.controller import ProgressEvent

pytestmark = pytest.mark.e2e

SPEED = 100.0
WIDTH, HEIGHT = 100, 30
STUCK = "demo-workers-50"
CLUSTER = """\
name: demo
location: fsn1
control_plane:
  count: 3
workers:
  - name: workers
    count: 97
talos:
  image_factory: {factory}
"""


class Both:
    """Every event to the live view and to the plain log, each with its own board."""

    def __init__(self, live: LiveReporter, plain: PlainReporter) -> None:
        self.live, self.plain = live, plain

    def emit(self, event: ProgressEvent) -> None:
        self.live.emit(event)
        self.plain.emit(event)

    def tick(self) -> None:
        self.plain.tick()

    def close(self) -> None:
        self.live.close()
        self.plain.close()


def seconds(text: str) -> int:
    """``1:05`` -> 65."""
    minutes, _, secs = text.rpartition(":")
    return int(minutes or 0) * 60 + int(secs)


def frame(live: LiveReporter) -> list[str]:
    screen = Console(record=True, width=WIDTH, height=HEIGHT, file=io.StringIO())
    screen.print(live.view())
    return screen.export_text().splitlines()


@pytest.fixture
def sim_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    faults = WorldFaults.parse({"talos": {"slow_boots": [STUCK], "slow_boot_factor": 1000}})
    with World.start_in_thread(speed=SPEED, faults=faults) as threaded:
        for name, value in child_env(threaded.env).items():
            monkeypatch.setenv(name, value)
        config = tmp_path / "cluster.yaml"
        config.write_text(CLUSTER.format(factory=threaded.world.factory_url))
        yield config


def test_live_view_and_log_of_100_nodes_name_the_stuck_one(sim_env: Path) -> None:
    import dataclasses
    import os

    from hk8s.model.timing import Timing

    config = load_config(sim_env)
    clock = SystemClock()
    console = Console(
        record=True, width=WIDTH, height=HEIGHT, file=io.StringIO(), force_terminal=True
    )
    live = LiveReporter(PhaseBoard(clock), console, start=False)
    log = io.StringIO()
    # The stuck node is waited for twice the default boot timeout: longer than the widest gap
    # between two "still waiting" lines (16x progress_interval), so one of them falls inside
    # the wait whatever the machine's load (with the default, a loaded run could miss it).
    # The cluster waits (addons rolled out: a DaemonSet's 99 pods made, scheduled and run by
    # the real controllers) take wall time the world's speed does not shrink: 12 s at speed
    # 100 timed out next to two other test workers. They get 4x as long.
    timing = Timing.from_env()
    timing = dataclasses.replace(
        timing, boot_timeout=2 * timing.boot_timeout, cluster_timeout=4 * timing.cluster_timeout
    )
    assert timing.boot_timeout - 16 * timing.progress_interval > 2 * timing.progress_interval
    provider = HcloudProvider(os.environ["HCLOUD_TOKEN"], timing=timing)
    plain = PlainReporter(PhaseBoard(clock), log, interval=provider.timing.progress_interval)
    both = Both(live, plain)
    options = CreateOptions(
        secrets_path=sim_env.parent / "secrets.yaml",
        kubeconfig_path=sim_env.parent / "kubeconfig",
        talosconfig_path=sim_env.parent / "talosconfig",
        token=os.environ["HCLOUD_TOKEN"],
    )
    frames: list[list[str]] = []

    async def watch() -> None:
        while True:
            await asyncio.sleep(0.5)
            frames.append(frame(live))

    async def run() -> None:
        watcher = asyncio.create_task(watch())
        try:
            with ticking(both, clock, 0.05):
                await converge(config, provider, options, both)
        finally:
            watcher.cancel()
            frames.append(frame(live))
            both.close()

    try:
        with pytest.raises(Hk8sError, match=STUCK):
            asyncio.run(run())
    finally:
        provider.close()

    # the live view: every frame fits; phases counted and timed; the stuck node named
    assert frames
    tallest = max(frames, key=len)
    assert len(tallest) < HEIGHT, "\n".join(tallest)
    texts = ["\n".join(f) for f in frames]
    assert any("servers" in t and "100/100" in t and "in 0:" in t for t in texts)
    assert any("machine configs" in t and "/100" in t for t in texts)
    # nodes Ready counts node by node: the 99 that answered (the stuck one is left out)
    assert any("nodes Ready" in t and "99/99" in t for t in texts)
    stuck_rows = [
        line for t in texts for line in t.splitlines() if STUCK in line and "Talos API" in line
    ]
    assert stuck_rows, texts[-1]
    assert max(seconds(row.split()[0]) for row in stuck_rows) >= 3  # how long it has waited
    final = texts[-1]
    assert "✗ machine configs" in final and "1 failed" in final
    above = console.export_text()  # printed above the live region: stays visible
    assert f"✗ Talos API of {STUCK} to answer" in above and "phase durations" in above

    # the log: short, one line per phase transition, and what it still waits for
    lines = log.getvalue().splitlines()
    assert len(lines) < 60, "\n".join(lines)
    text = "\n".join(lines)
    assert "ok  servers 100/100 in" in text
    assert any("still waiting for" in line and STUCK in line for line in lines), text
    assert f"ERR Talos API of {STUCK} to answer" in text
    assert "phase durations" in text
