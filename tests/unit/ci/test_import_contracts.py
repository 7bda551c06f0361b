"""The import contracts of ``.importlinter`` that keep the controller's shape (issue 18) fail
when they are broken: no import cycle anywhere, command packages that never import each other,
and shared machinery that never imports a command.

Each case lays out a small package ``synth`` shaped like ``hk8s`` (its ``controller`` has the
very modules the contracts name), copies those contracts from the repository's
``.importlinter`` with ``hk8s`` renamed, adds one import, and runs ``lint-imports`` on it.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = ("no-cycles", "controller-commands-independent", "controller-tiers")


def _contracts() -> dict[str, dict[str, str]]:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return {name: dict(config[f"importlinter:contract:{name}"]) for name in CONTRACTS}


def _controller_children(contracts: dict[str, dict[str, str]]) -> list[str]:
    """Every child of ``hk8s.controller`` the tiers contract places (it is exhaustive)."""
    layers = contracts["controller-tiers"]["layers"].split()
    return [name for name in layers if name not in {"|", ":"}]


def _write(root: Path, module: str, source: str = "") -> None:
    path = root.joinpath(*module.split("."))
    if module.count(".") < 2 or not path.name.startswith("_"):
        path.mkdir(parents=True, exist_ok=True)
        (path / "__init__.py").write_text(source)
    else:
        path.with_suffix(".py").write_text(source)


def _lint(tmp_path: Path, imports: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over ``synth`` with the contracts, ``imports`` added (module -> the
    module it imports)."""
    contracts = _contracts()
    src = tmp_path / "src"
    _write(src, "synth")
    _write(src, "synth.controller")
    for child in _controller_children(contracts):
        _write(src, f"synth.controller.{child}")
    # each package has modules of its own, as the real ones do
    for child in _controller_children(contracts):
        if not child.startswith("_"):
            _write(src, f"synth.controller.{child}._command")
            _write(src, f"synth.controller.{child}._plan")
    for importer, imported in imports.items():
        path = src.joinpath(*importer.split("."))
        target = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        target.write_text(target.read_text() + f"import {imported}\n")
    config = ["[importlinter]", "root_package = synth", ""]
    for name, options in contracts.items():
        config.append(f"[importlinter:contract:{name}]")
        for key, value in options.items():
            lines = value.replace("hk8s", "synth").strip().splitlines()
            if len(lines) == 1 and key not in {"ancestors", "containers", "modules"}:
                config.append(f"{key} = {lines[0]}")
            else:
                config.append(f"{key} =" + "".join(f"\n    {line}" for line in lines))
        config.append("")
    (tmp_path / ".importlinter").write_text("\n".join(config))
    return subprocess.run(
        [str(LINT_IMPORTS), str(tmp_path / ".importlinter"), "--no-cache"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_the_contracts_hold_for_a_tree_of_the_right_shape(tmp_path: Path) -> None:
    result = _lint(
        tmp_path,
        {
            "synth.controller.create._command": "synth.controller.infra",
            "synth.controller.upgrade._command": "synth.controller.image",
            "synth.controller.image._command": "synth.controller._plan",
            "synth.controller._executor": "synth.controller._plan",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("imports", "broken", "said"),
    [
        pytest.param(
            {"synth.controller._plan": "synth.controller._report",
             "synth.controller._report": "synth.controller._plan"},
            ["No import cycles anywhere"],
            "No cycles are allowed in synth.controller.",
            id="a cycle between two shared modules",
        ),
        pytest.param(
            {"synth.controller.create._command": "synth.controller.create._plan",
             "synth.controller.create._plan": "synth.controller.create._command"},
            ["No import cycles anywhere"],
            "No cycles are allowed in synth.controller.create.",
            id="a cycle inside a command package",
        ),
        pytest.param(
            {"synth.controller.doctor._command": "synth.controller.destroy._command"},
            ["command packages do not import each other", "Controller: commands over"],
            "synth.controller.doctor._command -> synth.controller.destroy._command",
            id="one command importing another",
        ),
        pytest.param(
            {"synth.controller._inventory": "synth.controller.image._command"},
            ["Controller: commands over the image and infra components"],
            "synth.controller._inventory -> synth.controller.image._command",
            id="shared machinery importing a component",
        ),
        pytest.param(
            {"synth.controller.infra._command": "synth.controller.create"},
            ["Controller: commands over the image and infra components"],
            "synth.controller.infra._command -> synth.controller.create",
            id="a component importing a command",
        ),
    ],
)  # fmt: skip
def test_each_contract_fails_when_it_is_broken(
    tmp_path: Path, imports: dict[str, str], broken: list[str], said: str
) -> None:
    result = _lint(tmp_path, imports)
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout.split("Broken contracts")[-1]
    assert f"Contracts: {3 - len(broken)} kept, {len(broken)} broken." in result.stdout
    assert all(name in report for name in broken)
    assert said in report  # what to remove is named


def test_a_new_child_of_the_controller_must_be_placed_in_a_tier(tmp_path: Path) -> None:
    (tmp_path / "src/synth/controller").mkdir(parents=True)
    (tmp_path / "src/synth/controller/_stray.py").write_text("")
    result = _lint(tmp_path, {})
    assert result.returncode != 0
    assert "synth.controller._stray" in result.stdout + result.stderr
