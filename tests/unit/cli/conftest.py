"""Run the hk8s command line in-process and capture what a user would see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from hk8s.cli import run

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("config", "validate", "-f", path)`` -> Result(exit_code, stdout, stderr)."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return invoke


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    """Write a config text to a file and return its path."""

    def _write(text: str, name: str = "cluster.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write
