"""Commands start fast: each imports only what it uses (issue 17).

Runs the command line in a fresh interpreter, as a user's shell would, and lists the modules
it loaded. bench/startup.py measures what these imports cost: pydantic ~70 ms, requests +
hcloud ~75 ms, asyncio ~20 ms, against ~90 ms for a whole ``hk8s --help``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hk8s.cli import COMMANDS

VENV_BIN = Path(sys.executable).parent

# What no command needs before it runs, nor `version` at all: network clients, the Talos API
# (generated stubs, protobuf, grpclib), SSH, crypto, YAML and config validation (pydantic),
# rich's live views, the event loop, and the simulator.
HEAVY = (
    "asyncio",
    "cryptography",
    "google",
    "grpclib",
    "hcloud",
    "hk8s.config",
    "hk8s.controller",
    "hk8s.providers",
    "hk8s.sim",
    "hk8s.talosapi",
    "kubernetes",
    "paramiko",
    "pydantic",
    "requests",
    "rich",
    "yaml",
)

# What create, upgrade and destroy need and `hk8s plan` (of a cluster that does not exist yet)
# does not: the Kubernetes client, the Talos API, SSH, the secrets bundle's crypto, live views.
NOT_FOR_PLAN = (
    "cryptography",
    "google",
    "grpclib",
    "hk8s.pki",
    "hk8s.providers.k8s",
    "hk8s.providers.ssh",
    "hk8s.providers.talos",
    "hk8s.sim",
    "hk8s.talosapi",
    "kubernetes",
    "paramiko",
    "rich",
)

PROBE = """
import json, sys
from hk8s.cli import run
code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_modules(*args: str, code: int = 0, env: dict[str, str] | None = None) -> set[str]:
    """Every module ``hk8s <args>`` had imported when it finished."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == code, proc.stderr
    return set(report["modules"])


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The packages of ``packages`` that ``modules`` contains (a package or any module in it)."""
    return sorted(p for p in packages if any(m == p or m.startswith(f"{p}.") for m in modules))


# Options given (an Enum, a bool flag, the global --output) are coerced too: typer 0.29 does that
# through pydantic TypeAdapters, even for a bool (pyproject.toml keeps typer below 0.29).
FAST_PATHS = [
    ["--help"],
    ["version"],
    ["--output", "json", "--verbose", "version", "-o", "text"],
    *([name, "--help"] for name in COMMANDS),
]


@pytest.mark.parametrize("args", FAST_PATHS, ids=" ".join)
def test_help_and_version_import_no_heavy_library(args: list[str]) -> None:
    # Every command module is imported for its --help: heavy imports belong inside the command.
    assert among(loaded_modules(*args), HEAVY) == []


def test_plan_imports_only_what_planning_needs(tmp_path: Path) -> None:
    from hk8s.sim.hcloud import run_in_thread

    config = tmp_path / "cluster.yaml"
    config.write_text(
        "name: demo\nlocation: fsn1\ncontrol_plane:\n  count: 1\nfirewall:\n"
        "  kube_api_sources: [203.0.113.7/32]\n  talos_api_sources: [203.0.113.7/32]\n"
    )
    with run_in_thread(speed=100) as threaded:
        env = {**os.environ, **threaded.sim.env()}
        # changes pending (3): it did plan, against the API
        modules = loaded_modules("plan", "-f", str(config), code=3, env=env)
    assert among(modules, ("hcloud", "hk8s.config", "asyncio")) == [
        "asyncio",
        "hcloud",
        "hk8s.config",
    ]
    assert among(modules, NOT_FOR_PLAN) == []


def test_console_script_reports_a_bad_config_without_traceback(tmp_path: Path) -> None:
    hk8s = VENV_BIN / "hk8s"
    if not hk8s.exists():
        pytest.skip("console script not installed in this interpreter's environment")
    bad = tmp_path / "cluster.yaml"
    bad.write_text("name: demo\nlocation: fsn1\ncontrol_plane:\n  count: 2\n")
    proc = subprocess.run(
        [str(hk8s), "config", "validate", "-f", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "control_plane.count (line 4:10): control plane count 2 is even" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_controller_export_resolves() -> None:
    # hk8s.controller imports its modules on first use: a stale name in its table would only
    # fail when a command reaches for it.
    import hk8s.controller as controller

    missing = [name for name in controller.__all__ if getattr(controller, name, None) is None]
    assert missing == []
