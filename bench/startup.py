"""Startup time of the ``hk8s`` console script.

Prints the median wall time of ``hk8s --help`` (the installed console script in .venv/bin)
and its ratio to ``python -c pass`` on the same interpreter: the part hk8s itself adds.
Target: median <= 150 ms on the 2-core CI machine. A benchmark, not a test: never fails on
timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TARGET_MS = 150.0


# What a user has: an installed package runs from cached bytecode. With
# PYTHONDONTWRITEBYTECODE set (some shells and CI images set it) every module would be compiled
# from source on each start, which measures the compiler rather than hk8s.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_ms(argv: list[str], runs: int) -> float:
    """Median wall time of ``argv`` over ``runs`` runs, after one warm-up run."""
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=ENV)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=ENV)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    hk8s = VENV_BIN / "hk8s"
    python = VENV_BIN / "python"
    if not hk8s.exists():
        print(f"{hk8s} not found: run `make venv` first", file=sys.stderr)
        return 1
    baseline = median_ms([str(python), "-c", "pass"], args.runs)
    help_ms = median_ms([str(hk8s), "--help"], args.runs)
    version_ms = median_ms([str(hk8s), "version"], args.runs)
    verdict = "ok" if help_ms <= TARGET_MS else f"over the {TARGET_MS:.0f} ms target"
    print(f"python -c pass   median {baseline:6.1f} ms")
    print(
        f"hk8s --help      median {help_ms:6.1f} ms  ({help_ms / baseline:.1f}x python)  {verdict}"
    )
    print(f"hk8s version     median {version_ms:6.1f} ms  ({version_ms / baseline:.1f}x python)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
