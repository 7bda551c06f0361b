"""Start-up time of ``hk8s``: ``--help``, ``version`` and ``plan``, and where plan's goes.

What is measured, as wall time from the process' start (what a user's shell sees), run by the
installed console script in .venv/bin:

- ``hk8s --help`` and ``hk8s version``: the whole command, to its exit.
- ``plan start-up``: ``hk8s plan`` from process start until it connects to the Hetzner API for
  its first request: arguments parsed, cluster.yaml read and validated, token and environment
  checked, the API client built. A local socket stands in for the API and the process is killed
  as soon as it connects, so nothing after that point is counted.
- ``plan whole``: a plan of a fresh 1-node cluster against the simulated Hetzner API, to its
  exit (3, changes pending): the start-up plus a handful of list calls and the rendering.

Each round runs every command once, in turn, so load from other work on the (shared) machine
falls on all of them alike; a ratio is the median of each round's ratio. CPU time (user + sys
of the child) is printed beside the wall time: it moves less with load. Targets (issue 17):
``--help`` <= 150 ms; ``version`` and plan start-up <= 1.5x ``--help``.

Then where plan's start-up goes: a fresh interpreter performs plan's steps one by one, in
plan's order, and each step's time is its median over the runs. A library two steps share
counts for the first that loads it.

A benchmark, not a test: never fails on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
HELP_TARGET_MS = 150.0
RATIO_TARGET = 1.5  # x hk8s --help, for version and plan start-up

# What a user has: an installed package runs from cached bytecode. With
# PYTHONDONTWRITEBYTECODE set (some shells and CI images set it) every module would be compiled
# from source on each start, which measures the compiler rather than hk8s.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

PLAN_CONFIG = """\
name: startup
location: fsn1
control_plane:
  count: 1
firewall:
  kube_api_sources: [203.0.113.7/32]
  talos_api_sources: [203.0.113.7/32]
"""
Sample = tuple[float, float]  # wall ms, cpu ms of one run
TOKEN = "t" * 64  # the format hk8s checks; the stand-in API never reads it

# Plan's start-up, step by step in the order `hk8s plan` takes them (cli/plan.py, cli/infra.py):
# (what pays it, label, code). "help": --help pays it too; "lib": a library plan needs;
# "hk8s": hk8s' own modules (with the pydantic schemas and dataclasses they build); "work": the
# config read and validated, the client built.
STEPS: list[tuple[str, str, str]] = [
    ("help", "typer, hk8s.cli", "import hk8s.cli"),
    (
        "hk8s",
        "build plan's command",
        "from hk8s.cli._app import load_command; load_command('plan')",
    ),
    ("lib", "asyncio", "import asyncio"),
    ("lib", "pyyaml", "import yaml"),
    (
        "lib",
        "pydantic",
        "import pydantic_core\nfrom pydantic import AfterValidator, BaseModel, ConfigDict, Field, "
        "TypeAdapter, ValidationError, ValidationInfo, model_validator\n"
        # pydantic imports its plugin loader (importlib.metadata, ~10 ms) at the first model
        "import pydantic.plugin._loader",
    ),
    ("hk8s", "hk8s.config (models)", "import hk8s.config"),
    ("lib", "requests, urllib3", "import requests"),
    ("lib", "hcloud", "import hcloud"),
    ("hk8s", "hk8s.providers.hcloud", "from hk8s.providers.hcloud import HcloudProvider"),
    (
        "hk8s",
        "hk8s.controller (plan's)",
        "import hk8s.cli.infra, hk8s.cli.create\n"
        "from hk8s.controller import Reconciler, pending_servers, check_catalogue",
    ),
    ("work", "read+validate config", "from hk8s.config import load_config; load_config(CONFIG)"),
    ("work", "check env, build client", "from hk8s.cli.infra import connect; connect(TOKEN)"),
]
STEP_PROBE = """
import json, os, sys, time
from pathlib import Path
CONFIG, TOKEN = Path(sys.argv[1]), sys.argv[2]
times = []
for code in json.loads(sys.argv[3]):
    start = time.perf_counter()
    exec(code)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps(times))
"""


def timed(argv: list[str], env: dict[str, str], codes: tuple[int, ...] = (0,)) -> Sample:
    """Wall and CPU milliseconds of one whole run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = (time.perf_counter() - start) * 1000
    if proc.returncode not in codes:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()}")
    return wall, _cpu_since(before)


def first_request(argv: list[str], env: dict[str, str], api: socket.socket) -> Sample:
    """Wall and CPU milliseconds from starting ``argv`` until it connects to ``api``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    while True:
        try:
            conn, _ = api.accept()
            break
        except TimeoutError:
            # A command that failed before its first request must stop the benchmark.
            if proc.poll() is not None or time.perf_counter() - start > 60:
                proc.kill()
                _, err = proc.communicate()
                raise SystemExit(
                    f"{' '.join(argv)} never reached the API: {err.decode()}"
                ) from None
    wall = (time.perf_counter() - start) * 1000
    proc.kill()
    proc.communicate()
    conn.close()
    return wall, _cpu_since(before)


def _cpu_since(before: resource.struct_rusage) -> float:
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return used * 1000


def rounds(runs: int, commands: dict[str, Callable[[], Sample]]) -> dict[str, list[Sample]]:
    """``runs`` rounds of every command in turn (after one warm-up round, which also writes
    the bytecode caches); per command its list of (wall, cpu)."""
    for run in commands.values():
        run()
    results: dict[str, list[Sample]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, run in commands.items():
            results[name].append(run())
    return results


def measure(hk8s: Path, python: Path, runs: int, config: Path) -> dict[str, list[Sample]]:
    """Rounds of the commands; ``plan whole`` against the simulated Hetzner API."""
    from hk8s.sim.hcloud import run_in_thread

    api = socket.create_server(("127.0.0.1", 0))
    api.settimeout(0.05)
    standin = {
        **ENV,
        "HCLOUD_ENDPOINT": f"http://127.0.0.1:{api.getsockname()[1]}/v1",
        "HCLOUD_TOKEN": TOKEN,
    }
    plan = [str(hk8s), "plan", "-f", str(config)]
    with api, run_in_thread(speed=100) as threaded:
        world = {**ENV, **threaded.sim.env()}
        return rounds(
            runs,
            {
                "python -c pass": lambda: timed([str(python), "-c", "pass"], ENV),
                "hk8s --help": lambda: timed([str(hk8s), "--help"], ENV),
                "hk8s version": lambda: timed([str(hk8s), "version"], ENV),
                "plan start-up": lambda: first_request(plan, standin, api),
                "plan whole": lambda: timed(plan, world, codes=(3,)),
            },
        )


def breakdown(python: Path, runs: int, config: Path) -> list[float]:
    """Median milliseconds of each of ``STEPS`` in a fresh interpreter."""
    env = {**ENV, "HCLOUD_ENDPOINT": "http://127.0.0.1:9/v1"}
    code = json.dumps([step for _, _, step in STEPS])
    samples = []
    for _ in range(runs + 1):
        proc = subprocess.run(
            [str(python), "-c", STEP_PROBE, str(config), TOKEN, code],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"the start-up steps failed: {proc.stderr}")
        samples.append(json.loads(proc.stdout))
    return [statistics.median(column) for column in zip(*samples[1:], strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    hk8s, python = VENV_BIN / "hk8s", VENV_BIN / "python"
    if not hk8s.exists():
        print(f"{hk8s} not found: run `make venv` first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "cluster.yaml"
        config.write_text(PLAN_CONFIG)
        results = measure(hk8s, python, args.runs, config)
        steps = breakdown(python, args.runs, config)

    def med(name: str, i: int) -> float:
        return statistics.median(sample[i] for sample in results[name])

    def ratio(name: str) -> float:
        pairs = zip(results[name], results["hk8s --help"], strict=True)
        return statistics.median(a[0] / b[0] for a, b in pairs)

    help_ms = med("hk8s --help", 0)
    print(f"{'':<16} {'wall ms':>8} {'cpu ms':>7}  {'/ --help':>8}  (median of {args.runs} rounds)")
    for name in results:
        rel = "" if name in ("python -c pass", "hk8s --help") else f"{ratio(name):7.2f}x"
        print(f"{name:<16} {med(name, 0):8.1f} {med(name, 1):7.1f}  {rel:>8}")
    print(
        f"--help target <= {HELP_TARGET_MS:.0f} ms: {'ok' if help_ms <= HELP_TARGET_MS else 'over'}"
    )
    for name in ("hk8s version", "plan start-up"):
        verdict = "ok" if ratio(name) <= RATIO_TARGET else "over"
        print(f"ratio {name.removeprefix('hk8s ')}/--help = {ratio(name):.2f} "
              f"(target <= {RATIO_TARGET}x): {verdict}")  # fmt: skip
    print("\nplan start-up, step by step (fresh interpreter, medians):")
    print(f"  {'interpreter':<28} {med('python -c pass', 0):6.1f} ms")
    paid: dict[str, float] = {}
    for (kind, label, _), ms in zip(STEPS, steps, strict=True):
        paid[kind] = paid.get(kind, 0.0) + ms
        print(f"  {label:<28} {ms:6.1f} ms  {'(--help too)' if kind == 'help' else ''}")
    print(
        f"  beyond --help's imports: libraries {paid['lib']:.0f} ms, hk8s' own modules "
        f"{paid['hk8s']:.0f} ms, work {paid['work']:.0f} ms"
    )
    floor = (help_ms + paid["lib"]) / help_ms
    print(
        f"  --help plus those libraries alone: {floor:.2f}x --help "
        "(plan's floor while it needs them)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
