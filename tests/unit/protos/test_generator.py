"""tools/protos.py: generation is deterministic and `check` names stale files."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("protos_tool", ROOT / "tools" / "protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "protos.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_generation_is_deterministic_and_stale_files_are_named(
    tool: ModuleType, tmp_path: Path
) -> None:
    first = tool.generate_into(tmp_path / "a")
    second = tool.generate_into(tmp_path / "b")
    assert tool.stale_files(first, second) == []
    names = {p.name for p in first.rglob("*.py*")}
    assert {"machine_pb2.py", "machine_pb2.pyi", "machine_grpc.py", "state_grpc.py"} <= names
    assert "common_grpc.py" not in names  # message-only files get no empty service module

    (second / "machine" / "machine_pb2.py").write_text("# edited\n")
    (second / "extra.py").write_text("")
    (second / "cluster" / "cluster_grpc.py").unlink()
    assert tool.stale_files(first, second) == [
        "hk8s/talosapi/cluster/cluster_grpc.py",
        "hk8s/talosapi/extra.py",
        "hk8s/talosapi/machine/machine_pb2.py",
    ]
    shutil.rmtree(second)
    assert len(tool.stale_files(first, second)) == len(list(first.rglob("*.py*")))
