"""What the upstream oracles share: the Go toolchain, and building an oracle from its module.

Each oracle is a Go module under ``tests/oracles`` pinning its upstream code in a committed
go.mod/go.sum. ``make oracles`` builds them into ``~/.cache/hk8s/oracles`` (``HK8S_ORACLES``
elsewhere) with Go's own caches; a test session builds whatever is missing or older than its
sources the same way. An oracle that cannot be built fails its tests, as missing reference
data does: a judge that is not there must not pass for one that agreed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["build_oracle", "go_binary", "oracle_dir"]


def oracle_dir() -> Path:
    return Path(os.environ.get("HK8S_ORACLES") or Path.home() / ".cache/hk8s/oracles")


def go_binary(purpose: str) -> str:
    """The ``go`` command (``$GO``, the PATH or Go's default install); fails naming ``purpose``."""
    found = os.environ.get("GO") or shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    if fallback.is_file():
        return str(fallback)
    pytest.fail(f"no Go toolchain for {purpose}: install Go, or run make oracles")


def build_oracle(module: Path, name: str, package: str = ".") -> Path:
    """``oracle_dir()/name``, built from ``package`` of the Go module in ``module`` unless a
    build at least as new as the module's go.mod, go.sum and Go files is there already."""
    binary = oracle_dir() / name
    sources = [module / "go.mod", module / "go.sum", *module.glob("*.go")]
    if binary.is_file() and binary.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return binary
    go = go_binary(f"building {name}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(binary), package], cwd=module, check=True)
    return binary
