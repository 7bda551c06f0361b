"""Talos' own machinery as the oracle: one ``talos-oracle`` binary per supported minor.

Each ``v1.1x/`` is a Go module pinning ``github.com/siderolabs/talos/pkg/machinery`` at that
minor's release (committed go.mod/go.sum; ``oracle.go`` is shared by a symlink), built as
``tests/oracle_support.py`` says.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from oracle_support import build_oracle  # type: ignore[import-not-found]

HERE = Path(__file__).parent
MINORS = sorted(p.name.removeprefix("v") for p in HERE.glob("v1.*") if (p / "go.mod").is_file())
# The machinery release each module pins (its go.mod); the oracle speaks for that release.
RELEASES = {
    minor: next(
        line.split()[-1]
        for line in (HERE / f"v{minor}" / "go.mod").read_text().splitlines()
        if "siderolabs/talos/pkg/machinery " in line
    )
    for minor in MINORS
}


def _build(minor: str) -> Path:
    return build_oracle(HERE / f"v{minor}", f"talos-v{minor}")


class Oracle:
    """One minor's ``talos-oracle``."""

    def __init__(self, minor: str, binary: Path) -> None:
        self.minor = minor
        self.release = RELEASES[minor]
        self.binary = binary

    def run(self, *args: str | Path) -> Any:
        done = subprocess.run(
            [str(self.binary), *map(str, args)], capture_output=True, text=True, check=False
        )
        if done.returncode:
            raise OracleError(done.stderr.strip() or f"exit status {done.returncode}")
        return json.loads(done.stdout) if done.stdout.strip() else None


class OracleError(Exception):
    """Talos' machinery refused (the message is its own)."""


@pytest.fixture(scope="session", params=MINORS, ids=[f"talos-{m}" for m in MINORS])
def oracle(request: pytest.FixtureRequest) -> Oracle:
    return Oracle(request.param, _build(request.param))
