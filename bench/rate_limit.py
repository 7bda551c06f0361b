"""hk8s processes sharing one small Hetzner rate-limit bucket: 429s, failures, lost time.

Why: design.md §4 says hk8s honours ``RateLimit-Remaining``/``RateLimit-Reset`` and, on a 429,
waits for the bucket instead of hammering it. Inside one process a shared limiter paces every
request; separate processes (a CI matrix, an operator next to a pipeline) only learn about
each other through the headers and the occasional 429. This benchmark shows what each costs.

For 1, then several, concurrent processes: a fresh simulated world whose Hetzner bucket holds
``--bucket`` requests and refills one per simulated second (the real rate) serves one
``hk8s infra`` per process (its own 3+2 cluster: network, firewall, placement groups, load
balancer), all at once, then as many concurrent ``hk8s destroy --yes``. Printed per phase: the
requests served, the 429 answers among them (a storm would be about as many 429s as
requests), the processes that gave up, the wall time, and two lower bounds: the rate-limit
bound ``(requests - bucket) / refill`` and the same command alone with the default bucket.
``overhead`` is the wall time over the larger bound. The real bucket holds 3600 requests; a
small one makes a few processes behave like many clusters' worth of work in a drained project.

A benchmark, not a test: it never fails on a figure.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from _common import SimBench, table

if TYPE_CHECKING:
    from pathlib import Path

SHAPE = (3, 2)  # a load balancer and placement groups: every kind of infra resource
REFILL_PER_SECOND = 1.0  # docs.hetzner.cloud "Rate Limiting": one request per second


def phases(configs: list[Path]) -> dict[str, list[list[str]]]:
    return {
        "infra": [["infra", "-f", str(c)] for c in configs],
        "destroy": [["destroy", "--yes", "-f", str(c)] for c in configs],
    }


def alone(speed: float) -> dict[str, float]:
    """Wall time of each phase's command on its own, with the default (3600) bucket."""
    with SimBench.start(speed=speed) as bench:
        steps = phases([bench.config("alone", *SHAPE)])
        return {name: bench.hk8s(*commands[0]).wall for name, commands in steps.items()}


def contend(
    speed: float, bucket: int, processes: int, floor: dict[str, float]
) -> list[tuple[object, ...]]:
    """One row per phase: ``processes`` hk8s runs at once against a ``bucket`` bucket."""
    rows: list[tuple[object, ...]] = []
    with SimBench.start(speed=speed, rate_limit=bucket) as bench:
        configs = [bench.config(f"rl{i}", *SHAPE) for i in range(processes)]
        stats = bench.world.hcloud.stats
        for name, commands in phases(configs).items():
            bench.threaded.call(stats.reset)
            bench.set_rate_limit(bucket)  # every phase starts with a full, small bucket
            wall, runs = bench.hk8s_concurrently(commands)
            total, limited = bench.threaded.call(lambda: (stats.total, stats.rate_limited))
            bound = max(0.0, total - limited - bucket) / REFILL_PER_SECOND / speed
            best = max(bound, floor[name])
            failed = sum(r.returncode != 0 for r in runs)
            rows.append(
                (
                    processes,
                    name,
                    total,
                    limited,
                    f"{100 * limited / total:.0f}%",
                    failed,
                    f"{wall:.1f}",
                    f"{bound:.1f}",
                    f"{floor[name]:.1f}",
                    f"{wall / best:.1f}x",
                )
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=10.0, help="simulated time speed-up")
    parser.add_argument("--bucket", type=int, default=10, help="rate-limit bucket size")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 4, 8], help="concurrent hk8s processes"
    )
    args = parser.parse_args()
    floor = alone(args.speed)
    rows = [r for n in args.processes for r in contend(args.speed, args.bucket, n, floor)]
    print(
        f"bucket {args.bucket} requests, refill {REFILL_PER_SECOND:g}/simulated s, "
        f"speed {args.speed:g} (= {REFILL_PER_SECOND * args.speed:g} requests per wall second)"
    )
    header = (
        "processes",
        "phase",
        "requests",
        "429s",
        "429 share",
        "gave up",
        "wall s",
        "rate bound s",
        "alone s",
        "overhead",
    )
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
