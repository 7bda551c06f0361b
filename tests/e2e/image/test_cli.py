"""``hk8s image build|list|prune`` as a user runs them, against the simulated world."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

CONFIG = """\
name: dev
location: fsn1
talos:
  version: v1.11.3
  image_factory: "{factory}"{extra}
control_plane:
  count: 1
  server_type: cx23
"""


def write_config(world: Any, tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(CONFIG.format(factory=world.factory_url, extra=extra))
    return path


def hk8s_env(world: Any, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **world.env(XDG_CACHE_HOME=str(tmp_path / "cache"))}


def hk8s(world: Any, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "hk8s", *args],
        env=hk8s_env(world, tmp_path),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert world.sim.token not in result.stdout + result.stderr
    return result


def test_build_list_prune(world: Any, tmp_path: Path) -> None:
    config = write_config(world, tmp_path)

    built = hk8s(world, tmp_path, "-v", "image", "build", "-f", str(config))
    assert built.returncode == 0, built.stderr
    assert "amd64  snapshot" in built.stdout
    assert "Talos v1.11.3 amd64 schematic" in built.stdout
    # Progress on stderr, plain lines when not a terminal; -v: a line per step.
    assert "create image talos-v1.11.3-amd64-376567988ad3: waiting for SSH on" in built.stderr
    assert "ok  create image talos-v1.11.3-amd64-376567988ad3" in built.stderr
    # and, as every command that changes something, the phase and its duration at the end
    assert "ok  snapshots 1/1 in" in built.stderr and "phase durations" in built.stderr
    assert world.leftovers() == ([], [])

    listed = hk8s(world, tmp_path, "image", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["images"]
    assert (row["arch"], row["talos_version"], row["status"]) == ("amd64", "v1.11.3", "available")
    table = hk8s(world, tmp_path, "image", "list").stdout
    header = ["ID", "ARCH", "TALOS", "SCHEMATIC", "STATUS", "CREATED"]
    assert table.splitlines()[0].split() == header
    assert table.splitlines()[1].split()[:5] == [
        str(row["id"]),
        "amd64",
        "v1.11.3",
        row["schematic"][:12],
        "available",
    ]

    # Without a terminal to ask on, prune refuses unless --yes.
    refused = hk8s(world, tmp_path, "image", "prune")
    assert refused.returncode == 2
    assert "refusing without --yes" in refused.stderr
    kept = hk8s(world, tmp_path, "image", "prune", "-f", str(config), "--yes")
    assert kept.returncode == 0 and "nothing to prune" in kept.stdout
    assert len(world.snapshots()) == 1
    pruned = hk8s(world, tmp_path, "image", "prune", "--yes")
    assert pruned.returncode == 0 and "deleted 1 snapshot(s)" in pruned.stdout
    assert world.snapshots() == []


def test_the_build_type_is_what_is_sold_right_now_in_the_network_zone(
    world: Any, tmp_path: Path
) -> None:
    """Everything sold out in fsn1 (the API says available: false): the build moves to
    another location of eu-central, on the smallest type sold there; the pool's own type is
    a warning for `image build` (it orders no pool servers), not a refusal."""
    from hk8s.sim.hcloud import FaultSpec

    spec = FaultSpec.parse({"sold_out": ["*@fsn1", "cx23@nbg1"]})
    world.call(lambda: world.sim.set_faults(spec))
    config = write_config(world, tmp_path)
    built = hk8s(world, tmp_path, "image", "build", "-f", str(config))
    assert built.returncode == 0, built.stderr
    assert "server type cx23 is sold out in fsn1 right now" in built.stderr
    # nbg1 has cx23 sold out too (cpx12 is dearer): the cheapest 40 GB type is cx23 in hel1
    assert world.build_sites == [("cx23", "hel1")]
    assert world.leftovers() == ([], [])


def test_unknown_schematic_exits_1_with_a_hint(world: Any, tmp_path: Path) -> None:
    config = write_config(world, tmp_path, extra='\n  schematic: "' + "f" * 64 + '"')
    result = hk8s(world, tmp_path, "image", "build", "-f", str(config))
    assert result.returncode == 1
    assert "the Image Factory has no Talos v1.11.3 amd64 image" in result.stderr
    assert "hint: check talos.version and talos.schematic" in result.stderr
    assert world.leftovers() == ([], [])


def test_ctrl_c_while_waiting_for_the_rescue_system_cleans_up(world: Any, tmp_path: Path) -> None:
    config = write_config(world, tmp_path)
    world.rescue_works = False  # SSH never answers: the build waits until interrupted
    booted = threading.Event()
    world.threaded.call(
        lambda: world.sim.state.subscribe(
            lambda e: booted.set() if e.kind == "server_booted" else None
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hk8s", "image", "build", "-f", str(config)],
        env=hk8s_env(world, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert booted.wait(30), "the build server never booted"
        servers, keys = world.leftovers()
        assert len(servers) == 1 and len(keys) == 1
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert world.leftovers() == ([], [])


def test_a_rerun_after_a_kill_mid_build_takes_the_dead_claim_over_within_a_few_heartbeats(
    world: Any, tmp_path: Path
) -> None:
    """A build SIGKILLed after powering its server on leaves its claim (the SSH key) and its
    server. The re-run used to wait for that claim until it was an hour old (3600 simulated
    s); now its heartbeat stops, and the re-run takes it over after 4 missed beats (120 s)."""
    from e2e_support import hk8s_argv, observing, run_killed_after

    config = write_config(world, tmp_path)
    env = hk8s_env(world, tmp_path)
    # Mutations: claim key, build server, enable rescue, power on -> killed mid-build.
    run_killed_after(world.threaded, world.sim.api, hk8s_argv("image", "build", "-f", str(config)),
                     env, 4)  # fmt: skip
    servers, keys = world.leftovers()
    assert len(servers) == 1 and len(keys) == 1, (servers, keys)
    [dead_key] = world.call(lambda: list(world.sim.state.ssh_keys))
    refused: list[float] = []  # the re-run's claim, refused: the dead claim holds the name
    taken: list[float] = []  # the dead claim deleted

    def observer(record: Any, request: Any, response: Any) -> None:
        if record.method == "POST" and record.path.endswith("/ssh_keys") and record.status == 409:
            refused.append(record.at)
        if record.method == "DELETE" and record.path.endswith(f"/ssh_keys/{dead_key}"):
            taken.append(record.at)

    with observing(world.threaded, world.sim.api, observer):
        rerun = hk8s(world, tmp_path, "-v", "image", "build", "-f", str(config))
    assert rerun.returncode == 0, rerun.stderr
    assert "is stale (no heartbeat for" in rerun.stderr
    # Simulated seconds the re-run waited for the dead claim (its own start-up aside: each
    # real second of Python start-up is 100 simulated ones).
    waited = taken[0] - refused[0]
    assert 120 <= waited <= 120 + 3 * 30, waited  # 4 missed beats, give or take a poll
    assert len(world.snapshots()) == 1
    assert world.leftovers() == ([], [])


def test_two_concurrent_builds_of_one_image_make_exactly_one_snapshot(
    world: Any, tmp_path: Path
) -> None:
    """Live claims stay respected: the heartbeat keeps the first build's claim alive however
    long it takes, so the second build waits and takes its snapshot."""
    config = write_config(world, tmp_path)
    argv = [sys.executable, "-m", "hk8s", "-v", "image", "build", "-f", str(config)]
    procs = [
        subprocess.Popen(argv, env=hk8s_env(world, tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    assert len(world.snapshots()) == 1, [err[-3000:] for _, err in outs]
    assert world.max_parallel_builds == 1
    assert world.leftovers() == ([], [])
