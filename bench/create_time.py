"""Wall time of ``hk8s create`` for a 3+2 cluster, and what it implies at real speed.

Why: the simulated world runs ``speed`` times faster than real Hetzner and Talos (every
duration in ``hk8s.sim`` is roughly what the real thing takes), and hk8s scales its polling by
the same factor (``HK8S_TIME_SCALE``). So ``wall x speed`` estimates how long the same create
would take against the real cloud, as long as hk8s itself is not the bottleneck: the estimate
should stay about the same across speeds; where it grows with the speed, hk8s' own CPU time
and request latency (which do not scale) dominate, which is the overhead a real run pays too.

Each sample is a fresh world: ``hk8s image build`` (reported, not part of the create time),
then ``hk8s create`` of 3 control planes + 2 workers, then a no-op ``hk8s create`` re-run
(everything discovered by label, nothing to change, health checked). Medians over ``--runs``.
For the re-run, ``wall x speed`` is meaningless (it waits on nothing simulated); its wall time
is the figure.

A benchmark, not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import sys

from _common import SimBench, median, table

STEPS = ("image build", "create", "create re-run")


def sample(speed: float) -> dict[str, float]:
    """Wall seconds of each step in a fresh world at ``speed``."""
    with SimBench.start(speed=speed) as bench:
        config = bench.config("bench", control_planes=3, workers=2)
        file = ("-f", str(config))
        return {
            "image build": bench.hk8s("image", "build", *file).wall,
            "create": bench.hk8s("create", *file).wall,
            "create re-run": bench.hk8s("create", *file).wall,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--speeds", type=float, nargs="+", default=[50.0, 100.0], help="simulated time speed-ups"
    )
    parser.add_argument("--runs", type=int, default=2, help="samples per speed")
    args = parser.parse_args()
    rows = []
    for speed in args.speeds:
        samples = [sample(speed) for _ in range(args.runs)]
        for step in STEPS:
            walls = [s[step] for s in samples]
            wall = median(walls)
            real = "-" if step == "create re-run" else f"{wall * speed / 60:.1f}"
            spread = f"{min(walls):.1f}-{max(walls):.1f}"
            rows.append((f"{speed:g}", step, f"{wall:.1f}", spread, real))
    print(f"cluster 3+2, median of {args.runs} fresh world(s) per speed")
    print(table(("speed", "command", "wall s", "range s", "real-time min"), rows))
    print("real-time min = median wall x speed: the estimate for real Hetzner")
    return 0


if __name__ == "__main__":
    sys.exit(main())
