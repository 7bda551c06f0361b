"""Hetzner API requests per hk8s command, for clusters of growing size.

Why: design.md §4 promises an API discipline that keeps hk8s cheap on Hetzner's 3600
requests/hour budget: discovery is a constant number of label-selector list calls, servers are
created with everything in one request, actions are polled in batches, and the rate limit is
honoured. This benchmark counts what the simulated Hetzner API actually served.

For each cluster shape (control planes + workers), in a fresh simulated world at high speed,
it runs the real CLI in the order an operator would: ``image build``, ``infra`` twice,
``create`` twice, ``destroy --yes``, and prints per command the requests split into reads
and mutating ones, the label-selector discovery calls, 429 answers, and action polling
(``GET /actions`` requests vs the distinct actions they waited on). The summary shows whether a
no-op re-run costs the same whatever the cluster size (the ratio largest/smallest should be
about 1) and whether first runs grow with the number of servers rather than faster.

A benchmark, not a test: it never fails on a figure (a failing hk8s command stops it).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from _common import Run, SimBench, table

if TYPE_CHECKING:
    from pathlib import Path

SHAPES = ("1+1", "3+2", "3+10", "3+30")
STEPS = ("image build", "infra", "infra re-run", "create", "create re-run", "destroy")


def parse_shape(text: str) -> tuple[int, int]:
    cps, _, workers = text.partition("+")
    return int(cps), int(workers or 0)


def lifecycle(bench: SimBench, config: Path) -> dict[str, Run]:
    """The commands, in order, each with the requests it made."""
    file = ("-f", str(config))
    return {
        "image build": bench.hk8s("image", "build", *file),
        "infra": bench.hk8s("infra", *file),
        "infra re-run": bench.hk8s("infra", *file),
        "create": bench.hk8s("create", *file),
        "create re-run": bench.hk8s("create", *file),
        "destroy": bench.hk8s("destroy", "--yes", *file),
    }


def report_shape(shape: str, runs: dict[str, Run]) -> None:
    header = (
        "command",
        "total",
        "reads",
        "mutating",
        "discovery",
        "429s",
        "action polls",
        "actions",
        "max batch",
    )
    rows = [
        (
            step,
            len(r.calls),
            r.reads,
            r.mutations,
            r.discovery,
            r.rate_limited,
            r.action_polls,
            r.actions_polled,
            r.max_poll_batch,
        )
        for step, r in runs.items()
    ]
    print(f"\n-- cluster {shape}")
    print(table(header, rows))


def report_scaling(results: dict[str, dict[str, Run]]) -> None:
    """Each command's request count across shapes, and the ratio largest/smallest."""
    shapes = list(results)
    print("\n-- requests per command by cluster size (largest/smallest)")
    rows = []
    for step in STEPS:
        counts = [len(results[s][step].calls) for s in shapes]
        ratio = counts[-1] / counts[0] if counts[0] else float("nan")
        rows.append((step, *counts, f"{ratio:.2f}x"))
    servers = [sum(parse_shape(s)) for s in shapes]
    rows.append(("(servers)", *servers, f"{servers[-1] / servers[0]:.2f}x"))
    print(table(("command", *shapes, "ratio"), rows))
    all_runs = [r for runs in results.values() for r in runs.values()]
    polls = sum(r.action_polls for r in all_runs)
    waited = sum(r.actions_polled for r in all_runs)
    batch = max(r.max_poll_batch for r in all_runs)
    print(
        f"\n429 answers: {sum(r.rate_limited for r in all_runs)}   "
        f"mutating requests in re-runs: "
        f"{sum(results[s][k].mutations for s in shapes for k in ('infra re-run', 'create re-run'))}"
        f"\naction polling: {polls} GET /actions requests waited on {waited} actions; "
        f"largest batch {batch} ids in one request (GET /actions/{{id}}: "
        f"{sum(c.route == '/actions/{id}' for r in all_runs for c in r.calls)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=100.0, help="simulated time speed-up")
    parser.add_argument(
        "--shapes", nargs="+", default=list(SHAPES), help="control planes + workers, e.g. 3+2"
    )
    args = parser.parse_args()
    print(f"simulated world at speed {args.speed:g}; hk8s runs as a child process")
    results: dict[str, dict[str, Run]] = {}
    for shape in args.shapes:
        cps, workers = parse_shape(shape)
        started = time.perf_counter()
        with SimBench.start(speed=args.speed) as bench:
            results[shape] = lifecycle(bench, bench.config("bench", cps, workers))
        report_shape(shape, results[shape])
        print(f"({time.perf_counter() - started:.1f} s wall)")
    report_scaling(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
