"""``hk8s upgrade``'s own checks and plan rendering, without a cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hk8s.cli._main import EXIT_USAGE, run
from hk8s.cli.upgrade import render_plan
from hk8s.controller import NodeVersions, plan_upgrade

if TYPE_CHECKING:
    import pytest


def test_talos_only_and_kubernetes_only_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run(["upgrade", "--talos-only", "--kubernetes-only", "-f", "missing.yaml"])
    assert code == EXIT_USAGE
    assert "exclude each other" in capsys.readouterr().err


def test_the_plan_reads_one_line_per_node_and_phase() -> None:
    nodes = [
        NodeVersions("demo-cp-1", True, "v1.13.0", "1.35.0"),
        NodeVersions("demo-workers-1", False, "v1.12.0", "1.35.0"),
    ]
    plan = plan_upgrade("demo", nodes, talos="v1.13.0", kubernetes="1.35.0")
    lines = render_plan(plan).splitlines()
    assert lines[0].split() == [
        "talos",
        "demo-cp-1",
        "control-plane",
        "v1.13.0",
        "up",
        "to",
        "date",
    ]
    assert lines[1].split() == [
        "talos",
        "demo-workers-1",
        "worker",
        "v1.12.0",
        "->",
        "v1.13.0",
        "upgrade",
    ]
    assert len(lines) == 4  # and the two Kubernetes steps
