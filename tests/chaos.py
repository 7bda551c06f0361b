"""A seeded chaos run: kills, API faults and concurrent operators against the simulated world.

Each round starts a fresh world and plays one scenario, chosen by the seed:

- ``kill``: ``hk8s create`` is SIGKILLed after a random number of Hetzner changes (image
  build, servers, configs, bootstrap: wherever the count lands), with 10-30 % of the API's
  server and action calls failing; then one ``hk8s create`` without faults must converge. If
  the kill left an image build's claim (its SSH key), the re-run must take it over within
  ``CLAIM_BOUND`` simulated seconds of finding it (4 missed 30 s heartbeats plus polling; it
  used to wait an hour), or the round counts as not converged.
- ``operators``: two ``hk8s create`` of the same cluster start together from two directories
  (two secrets bundles); exactly one may build it, the other must be refused; then the winner
  re-runs and must converge.

After every round: ``hk8s destroy --yes`` and a look at what is left in the project. The report
counts, over all rounds: not converged, duplicates (servers beyond the desired ones, or a
second claim), orphans (servers not labelled with the winning cluster id), and leftovers (any
resource but snapshots after destroy). All must be 0; the exit status says whether they are.

    make chaos                      # SEED=1 ROUNDS=4
    python tests/chaos.py --seed 7 --rounds 10
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from e2e_support import child_env, hk8s_argv, observing, run_killed_after
from hk8s.sim.hcloud import FaultSpec
from hk8s.sim.world import World

SPEED = 100.0
TIMEOUT = 300
CONFIG = """\
name: chaos
location: fsn1
control_plane: {{count: 1}}
workers: [{{name: w, count: 2}}]
talos: {{image_factory: "{factory}"}}
"""
DESIRED = {"chaos-cp-1", "chaos-w-1", "chaos-w-2"}
CLAIM_BOUND = 4 * 30 + 3 * 30  # simulated s (controller/_image_claim.py: STALE_BEATS x 30 s)


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        hk8s_argv(*args, "-f", str(cwd / "cluster.yaml")),
        env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def _project(threaded: Any) -> dict[str, list[tuple[str, dict[str, str]]]]:
    state = threaded.world.hcloud.state

    def read() -> dict[str, list[tuple[str, dict[str, str]]]]:
        kinds = ("servers", "ssh_keys", "networks", "firewalls", "load_balancers",
                 "placement_groups", "volumes", "primary_ips")  # fmt: skip
        return {
            kind: [(r.name, dict(getattr(r, "labels", {}))) for r in getattr(state, kind).values()]
            for kind in kinds
        }

    result: dict[str, list[tuple[str, dict[str, str]]]] = threaded.call(read)
    return result


def _check_cluster(threaded: Any, tally: dict[str, int], notes: list[str]) -> None:
    servers = _project(threaded)["servers"]
    nodes = [(n, labels) for n, labels in servers if labels.get("cluster") == "chaos"]
    names = [n for n, _ in nodes]
    extra = [n for n in names if n not in DESIRED]
    tally["duplicates"] += len(extra) + (len(names) - len(set(names)))
    ids = {labels.get("hk8s/cluster-id") for _, labels in nodes}
    if len(ids) > 1:
        tally["orphans"] += len(nodes)
        notes.append(f"servers carry several cluster ids: {sorted(map(str, ids))}")
    claims = [n for n, _ in _project(threaded)["placement_groups"] if n.endswith("-claim")]
    tally["duplicates"] += max(0, len(claims) - 1)
    builds = [n for n, _ in servers if n.startswith("hk8s-build")]
    tally["leftovers"] += len(builds)
    if extra or builds:
        notes.append(f"unexpected servers: {extra + builds}")


def _destroy_and_count(threaded: Any, env: dict[str, str], cwd: Path, tally: dict[str, int],
                       notes: list[str]) -> None:  # fmt: skip
    result = _run(["destroy", "--yes"], env, cwd)
    if result.returncode != 0:
        notes.append(f"destroy exited {result.returncode}: {result.stderr[-300:]}")
    left = {k: [n for n, _ in v] for k, v in _project(threaded).items() if v}
    tally["leftovers"] += sum(len(v) for v in left.values())
    if left:
        notes.append(f"left after destroy: {left}")


def kill_round(rng: random.Random, threaded: Any, root: Path) -> tuple[dict[str, int], list[str]]:
    tally = {"rounds": 1, "not_converged": 0, "duplicates": 0, "orphans": 0, "leftovers": 0}
    notes: list[str] = []
    env = child_env(threaded.env)
    cwd = root / "a"
    cwd.mkdir()
    (cwd / "cluster.yaml").write_text(CONFIG.format(factory=threaded.world.factory_url))
    rate = rng.choice([0.1, 0.2, 0.3])
    faults = {"seed": rng.randrange(1 << 30), "errors": [
        {"method": "POST", "path": "/servers", "rate": rate, "code": 503},
        {"method": "GET", "path": "/actions", "rate": rate, "code": 502},
    ]}  # fmt: skip
    threaded.call(lambda: threaded.world.hcloud.set_faults(FaultSpec.parse(faults)))
    after = rng.randint(1, 30)
    notes.append(f"kill after {after} change(s), fault rate {rate}")
    run_killed_after(
        threaded, threaded.world.hcloud.api, hk8s_argv("create", "-f", str(cwd / "cluster.yaml")),
        env, after,
    )  # fmt: skip
    threaded.call(lambda: threaded.world.hcloud.set_faults(FaultSpec.parse({"seed": 1})))
    state = threaded.world.hcloud.state
    claims = threaded.call(
        lambda: [k.id for k in state.ssh_keys.values() if k.name.startswith("hk8s-build-talos-")]
    )
    refused: list[float] = []  # the re-run's claim refused (the dead claim holds the name)
    taken: list[float] = []  # the dead claim deleted

    def observer(record: Any, request: Any, response: Any) -> None:
        if record.method == "POST" and record.path.endswith("/ssh_keys") and record.status == 409:
            refused.append(record.at)
        if record.method == "DELETE" and any(
            record.path.endswith(f"/ssh_keys/{k}") for k in claims
        ):
            taken.append(record.at)

    with observing(threaded, threaded.world.hcloud.api, observer):
        result = _run(["create"], env, cwd)
    if result.returncode != 0:
        tally["not_converged"] += 1
        notes.append(f"re-run exited {result.returncode}: {result.stderr[-400:]}")
    if claims and refused:
        waited = (taken[0] if taken else float("inf")) - refused[0]
        notes.append(f"killed mid-build: the re-run took the dead claim over in {waited:.0f} s")
        if waited > CLAIM_BOUND:
            tally["not_converged"] += 1
            notes.append(f"the dead build claim held the re-run over {CLAIM_BOUND} s")
    _check_cluster(threaded, tally, notes)
    _destroy_and_count(threaded, env, cwd, tally, notes)
    return tally, notes


def operators_round(
    rng: random.Random, threaded: Any, root: Path
) -> tuple[dict[str, int], list[str]]:
    tally = {"rounds": 1, "not_converged": 0, "duplicates": 0, "orphans": 0, "leftovers": 0}
    notes: list[str] = []
    env = child_env(threaded.env)
    dirs = [root / "a", root / "b"]
    for d in dirs:
        d.mkdir()
        (d / "cluster.yaml").write_text(CONFIG.format(factory=threaded.world.factory_url))
    procs = [
        subprocess.Popen(hk8s_argv("create", "-f", str(d / "cluster.yaml")), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for d in dirs
    ]  # fmt: skip
    outcomes = [p.communicate(timeout=TIMEOUT) for p in procs]
    codes = [p.returncode for p in procs]
    winners = [d for d, code in zip(dirs, codes, strict=True) if code == 0]
    refused = [out for code, (_, out) in zip(codes, outcomes, strict=True)
               if "already claimed" in out]  # fmt: skip
    notes.append(f"exit codes {codes}")
    if len(winners) != 1 or len(refused) != 1:
        tally["not_converged"] += 1
        notes.append("expected one winner and one refusal")
        notes.extend(f"{d.name}: {out[-400:]}" for d, (_, out) in zip(dirs, outcomes, strict=True))
    # The winner is the directory whose run was not refused (it may have failed otherwise).
    losers = {d for d, (_, out) in zip(dirs, outcomes, strict=True) if "already claimed" in out}
    winner = winners[0] if winners else next((d for d in dirs if d not in losers), dirs[0])
    result = _run(["create"], env, winner)
    if result.returncode != 0:
        tally["not_converged"] += 1
        notes.append(f"winner's re-run exited {result.returncode}: {result.stderr[-400:]}")
    _check_cluster(threaded, tally, notes)
    _destroy_and_count(threaded, env, winner, tally, notes)
    return tally, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--only", choices=["kill", "operators"], default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    total = {"rounds": 0, "not_converged": 0, "duplicates": 0, "orphans": 0, "leftovers": 0}
    for number in range(1, args.rounds + 1):
        scenario = rng.choice([kill_round, kill_round, operators_round])
        if args.only:
            scenario = kill_round if args.only == "kill" else operators_round
        with (
            tempfile.TemporaryDirectory(prefix="hk8s-chaos-") as tmp,
            World.start_in_thread(speed=SPEED) as threaded,
        ):
            tally, notes = scenario(rng, threaded, Path(tmp))
        for key, value in tally.items():
            total[key] += value
        name = scenario.__name__.removesuffix("_round")
        line = ", ".join(f"{k} {v}" for k, v in tally.items() if k != "rounds")
        print(f"round {number} ({name}): {line}", file=sys.stderr)
        for note in notes:
            print(textwrap.indent(note, "    "), file=sys.stderr)
    print(json.dumps({"seed": args.seed, **total}))
    bad = total["not_converged"] + total["duplicates"] + total["orphans"] + total["leftovers"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
