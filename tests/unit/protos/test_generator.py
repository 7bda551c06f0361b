"""tools/protos.py: generation is deterministic and `check` names stale files."""

from __future__ import annotations

import importlib.util
import re
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


def test_generator_version_stamps_alone_are_not_stale(tool: ModuleType, tmp_path: Path) -> None:
    """A registry serving grpcio-tools 1.85.4 instead of 1.85.1 changed protoc's version stamps
    and nothing else; that once turned every fresh `make test` red."""
    first = tool.generate_into(tmp_path / "a")
    second = tool.generate_into(tmp_path / "b")
    pb2 = second / "machine" / "machine_pb2.py"
    text = pb2.read_text()
    stamp = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", text)
    assert stamp is not None and "# Protobuf Python Version: " in text
    bumped = re.sub(r"# Protobuf Python Version: \S+", "# Protobuf Python Version: 99.1.2", text)
    bumped = bumped.replace(stamp.group(0), "Domain.PUBLIC,\n    99,\n    1,\n    2,")
    assert bumped != text
    pb2.write_text(bumped)
    assert tool.stale_files(first, second) == []

    # What protos/ decides still counts: the serialized descriptor, here one field renamed.
    assert b"reboot" in pb2.read_bytes()
    pb2.write_bytes(pb2.read_bytes().replace(b"reboot", b"rebooz", 1))
    assert tool.stale_files(first, second) == ["hk8s/talosapi/machine/machine_pb2.py"]
