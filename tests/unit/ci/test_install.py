"""Reproducible installs: the lock re-resolves to the same bytes, and an installed venv is
up to date for make (a second ``make test`` installs nothing)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
UV = ROOT / ".tools" / "uv" / "bin" / "uv"


def test_resolving_the_unchanged_project_again_gives_the_same_lock_bytes(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run(
        [str(UV), "lock", "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "UV_PYTHON_DOWNLOADS": "never"},
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "uv.lock").read_bytes() == (ROOT / "uv.lock").read_bytes()


def test_the_lock_pins_every_package_with_hashes() -> None:
    """Every package in uv.lock but hk8s itself comes from the registry with a hash for each
    of its files: nothing is resolved at install time."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for package in lock["package"]:
        if package["name"] == "hk8s":
            assert package["source"] == {"editable": "."}
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files, f"{package['name']} has no files in the lock"
        assert all(f["hash"].startswith("sha256:") for f in files), package["name"]
    names = {p["name"] for p in lock["package"]}
    # the generators and the build backend are locked like everything else
    assert {"grpcio-tools", "mypy-protobuf", "hatchling", "editables", "ruff"} <= names


def test_an_installed_venv_is_up_to_date_for_make() -> None:
    """``make -q venv`` exits 0 when nothing would be installed: the state after any
    ``make venv``, so a second ``make test`` installs nothing."""
    result = subprocess.run(
        ["make", "-q", "-C", str(ROOT), "venv"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, "make venv would install again: " + result.stdout
