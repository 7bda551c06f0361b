"""Talos' own machinery as the oracle: one ``talos-oracle`` binary per supported minor.

Each ``v1.1x/`` is a Go module pinning ``github.com/siderolabs/talos/pkg/machinery`` at that
minor's release (committed go.mod/go.sum; ``oracle.go`` is shared by a symlink). ``make
oracles`` builds them into ``~/.cache/hk8s/oracles`` (``HK8S_ORACLES`` elsewhere) with Go's
own caches; a test session builds whatever is missing or older than its sources the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

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


def oracle_dir() -> Path:
    return Path(os.environ.get("HK8S_ORACLES") or Path.home() / ".cache/hk8s/oracles")


def _go() -> str | None:
    found = os.environ.get("GO") or shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    return str(fallback) if fallback.is_file() else None


def _build(minor: str) -> Path:
    binary = oracle_dir() / f"talos-v{minor}"
    module = HERE / f"v{minor}"
    sources = [module / "go.mod", module / "go.sum", *module.glob("*.go")]
    newest = max(p.stat().st_mtime for p in sources)
    if binary.is_file() and binary.stat().st_mtime >= newest:
        return binary
    go = _go()
    if go is None:  # an oracle that is not there fails, as the reference data does
        pytest.fail(f"no Go toolchain to build {binary.name}: install Go, or run make oracles")
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=module, check=True)
    return binary


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
