"""Reproducible installs: the lock re-resolves to the same bytes, an installed venv is up to
date for make (a second ``make test`` installs nothing), and a user's install has every library
hk8s imports."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
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


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level name -> the hk8s files that import it, for every non-stdlib import."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "hk8s").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top != "hk8s" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_library_hk8s_imports_comes_with_pip_install_hk8s() -> None:
    """A user's ``pip install hk8s`` brings its dependencies and theirs, none of the dev group:
    a library only a dev tool pulls in (click, by import-linter) is missing there, and the
    command that imports it fails with ModuleNotFoundError. uv.lock's graph says what each
    package requires (markers ignored: a superset, so the check never cries wolf)."""
    lock = {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    runtime: set[str] = set()
    todo = [d["name"] for d in lock["hk8s"]["dependencies"]]
    while todo:
        name = todo.pop()
        if name not in runtime:
            runtime.add(name)
            todo.extend(d["name"] for d in lock[name].get("dependencies", []))
    providers = metadata.packages_distributions()
    missing = {
        top: sorted(files)
        for top, files in _third_party_imports().items()
        if not {_normalized(d) for d in providers.get(top, [])} & runtime
    }
    assert missing == {}
