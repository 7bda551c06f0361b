"""`hk8s --help` and `hk8s version` start fast: no heavy libraries at import time.

Runs the real console script in a fresh interpreter, as a user's shell would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
HEAVY = ("hcloud", "grpclib", "kubernetes", "paramiko", "cryptography", "rich", "yaml")

PROBE = """
import json, sys
from hk8s.cli import run
code = run(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def loaded_modules(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=False
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return {name.split(".")[0] for name in report["modules"]}


@pytest.mark.parametrize("args", [["--help"], ["version"], ["config", "--help"]])
def test_fast_paths_import_no_heavy_library(args: list[str]) -> None:
    assert loaded_modules(*args).isdisjoint(HEAVY)


# What create, upgrade and destroy need and `hk8s plan` does not: the Kubernetes client, the
# Talos API (generated stubs, protobuf, grpclib) and SSH.
NOT_FOR_PLAN = ("kubernetes", "grpclib", "google", "paramiko")


def test_plan_imports_only_what_planning_needs(tmp_path: Path) -> None:
    from hk8s.sim.hcloud import run_in_thread

    config = tmp_path / "cluster.yaml"
    config.write_text(
        "name: demo\nlocation: fsn1\ncontrol_plane:\n  count: 1\nfirewall:\n"
        "  kube_api_sources: [203.0.113.7/32]\n  talos_api_sources: [203.0.113.7/32]\n"
    )
    with run_in_thread(speed=100) as threaded:
        env = {**os.environ, **threaded.sim.env()}
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, "plan", "-f", str(config)],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 3, proc.stderr  # changes pending: it did plan, against the API
    modules = set(report["modules"])
    assert "hcloud" in modules
    assert {m.split(".")[0] for m in modules}.isdisjoint(NOT_FOR_PLAN)
    assert not [m for m in modules if m.startswith("hk8s.talosapi")]


def test_help_does_not_even_load_pydantic() -> None:
    assert "pydantic" not in loaded_modules("--help")


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
