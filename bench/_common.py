"""What the benchmarks share: a simulated world, hk8s run in it, and the requests it served.

``SimBench`` starts the whole simulated world (``hk8s.sim.world.World``) in a background
thread, writes cluster configs into a temporary directory, runs the real ``hk8s`` CLI as a
child process with the world's environment (as ``make demo`` and the e2e tests do), and
records every request hk8s made (by its User-Agent: not the addons' cloud side) through the
simulated Hetzner API's observer hook, query string included, so a benchmark can tell batched
action polls and label-selector discovery calls apart from other reads.

Nothing here asserts: a command that fails stops the benchmark with its stderr (a broken
benchmark must not print figures), but no figure is ever compared with a target.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hk8s.sim.world import World, WorldFaults

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from hk8s.sim.world import ThreadedWorld

__all__ = [
    "MUTATING",
    "Call",
    "Run",
    "SimBench",
    "cluster_config",
    "median",
    "table",
]

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _QuietTeardown(logging.Filter):
    """Drop asyncio's "Task was destroyed but it is pending!" for the world's loop: its thread
    stops with the simulator's timers still scheduled, which is how it ends, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Task was destroyed but it is pending")


logging.getLogger("asyncio").addFilter(_QuietTeardown())
TIMEOUT = 900.0  # wall seconds for one hk8s command; only a hang gets anywhere near it


@dataclass(frozen=True)
class Call:
    """One request the simulated Hetzner API answered."""

    method: str
    route: str  # the route template, e.g. /servers/{id}/actions/poweron
    status: int
    query: dict[str, list[str]]

    @property
    def mutating(self) -> bool:
        return self.method in MUTATING

    @property
    def is_action_poll(self) -> bool:
        return self.method == "GET" and self.route in {"/actions", "/actions/{id}"}

    @property
    def is_discovery(self) -> bool:
        """A list call that finds resources by label (design.md §4: a constant number)."""
        return self.method == "GET" and "label_selector" in self.query


@dataclass
class Run:
    """One hk8s command: its exit status, wall time, output and the API requests it made."""

    argv: list[str]
    returncode: int
    wall: float
    stdout: str
    stderr: str
    calls: list[Call] = field(default_factory=list)

    @property
    def reads(self) -> int:
        return sum(not c.mutating for c in self.calls)

    @property
    def mutations(self) -> int:
        return sum(c.mutating for c in self.calls)

    @property
    def discovery(self) -> int:
        return sum(c.is_discovery for c in self.calls)

    @property
    def rate_limited(self) -> int:
        return sum(c.status == 429 for c in self.calls)

    @property
    def action_polls(self) -> int:
        return sum(c.is_action_poll for c in self.calls)

    @property
    def actions_polled(self) -> int:
        """Distinct actions the command waited on through ``GET /actions?id=..``."""
        ids = {i for c in self.calls if c.route == "/actions" for i in c.query.get("id", [])}
        return len(ids) + sum(c.route == "/actions/{id}" for c in self.calls)

    @property
    def max_poll_batch(self) -> int:
        """The most action ids one ``GET /actions`` asked about (batched polling, up to 25)."""
        batches = [len(c.query.get("id", [])) for c in self.calls if c.route == "/actions"]
        return max(batches, default=0)


class SimBench:
    """A simulated world in a thread, a work directory, and ``hk8s`` run against both."""

    def __init__(self, threaded: ThreadedWorld, workdir: Path) -> None:
        self.threaded = threaded
        self.workdir = workdir
        self.env = {**os.environ, **threaded.env, "NO_COLOR": "1"}
        self._calls: list[Call] = []
        self.threaded.call(lambda: self.world.hcloud.api.observers.append(self._observe))

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, *, speed: float, faults: dict[str, Any] | None = None, rate_limit: int | None = None
    ) -> Iterator[SimBench]:
        """A fresh world at ``speed``; ``rate_limit`` shrinks its Hetzner request bucket."""
        spec = WorldFaults.parse(faults) if faults else None
        with (
            tempfile.TemporaryDirectory(prefix="hk8s-bench-") as tmp,
            World.start_in_thread(speed=speed, faults=spec) as threaded,
        ):
            bench = cls(threaded, Path(tmp))
            if rate_limit is not None:
                bench.set_rate_limit(rate_limit)
            yield bench

    @property
    def world(self) -> World:
        return self.threaded.world

    def _observe(self, record: Any, request: Any, response: Any) -> None:
        # Runs on the world's loop; list.append is atomic, the bench thread reads after a run.
        # Only hk8s' own requests: the addons' cloud side (CCM, CSI driver) calls the API too,
        # with the cluster's token, as on real Hetzner, more often the more nodes there are.
        if record.client != "hk8s":
            return
        self._calls.append(Call(record.method, record.route, record.status, dict(request.query)))

    def set_rate_limit(self, limit: int) -> None:
        """A bucket of ``limit`` requests refilling one per simulated second (the real rate)."""
        from hk8s.sim.hcloud._stats import RateLimiter

        api = self.world.hcloud.api
        self.threaded.call(lambda: setattr(api, "limiter", RateLimiter(api.state.clock, limit)))

    def config(self, name: str, control_planes: int, workers: int) -> Path:
        """Write ``<name>.yaml``: a cluster of that shape using the world's image factory."""
        path = self.workdir / name / "cluster.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cluster_config(name, control_planes, workers, self.world.factory_url))
        return path

    def hk8s(self, *args: str) -> Run:
        """Run ``hk8s <args>``; the requests it made are in the returned ``Run``."""
        self._calls.clear()
        run = self._run(args, check=True)
        # Answers already on their way back were recorded before the process could exit.
        run.calls, self._calls = self._calls, []
        return run

    def hk8s_concurrently(self, commands: Sequence[Sequence[str]]) -> tuple[float, list[Run]]:
        """Every command as its own hk8s process, all at once: the wall time of the slowest.
        Their requests interleave, so the runs carry none (read the simulator's counters);
        a failing one is returned, not raised (how many fail is a figure here)."""
        start = time.perf_counter()
        with ThreadPoolExecutor(len(commands)) as pool:
            runs = list(pool.map(lambda args: self._run(args, check=False), commands))
        return time.perf_counter() - start, runs

    def _run(self, args: Sequence[str], *, check: bool) -> Run:
        argv = [sys.executable, "-m", "hk8s", *args]
        start = time.perf_counter()
        result = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        wall = time.perf_counter() - start
        if check and result.returncode != 0:
            tail = result.stderr[-3000:].replace(self.env["HCLOUD_TOKEN"], "<token>")
            raise SystemExit(f"hk8s {' '.join(args)} exited {result.returncode}:\n{tail}")
        return Run(list(args), result.returncode, wall, result.stdout, result.stderr)


def cluster_config(name: str, control_planes: int, workers: int, factory_url: str) -> str:
    """A minimal cluster.yaml: ``control_planes`` + one worker pool of ``workers`` (if any)."""
    data: dict[str, Any] = {
        "name": name,
        "location": "fsn1",
        "control_plane": {"count": control_planes},
        "talos": {"image_factory": factory_url},
    }
    if workers:
        data["workers"] = [{"name": "workers", "count": workers}]
    return yaml.safe_dump(data, sort_keys=False)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to fit; numbers right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x%s"))
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    # `make bench` runs every bench/*.py, this module included.
    print("(helpers shared by the benchmarks: nothing to measure)")
