"""The GitHub workflows: ours (.github/workflows) and the one the README offers users.

actionlint (built from its Go module pinned in tools/go, as ``make lint`` runs it) checks both,
with shellcheck on every ``run:`` script; a workflow a user copies from the README must be as
valid as our own.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "go",
            "-C",
            str(ROOT / "tools" / "go"),
            "tool",
            "actionlint",
            "-shellcheck",
            str(SHELLCHECK),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def readme_workflow() -> str:
    """The YAML block of the README's "Running hk8s in CI" section that is a workflow."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running hk8s in CI", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    workflows = [b for b in blocks if "jobs:" in b]
    assert len(workflows) == 1, "the section should offer exactly one workflow"
    return workflows[0]


def test_the_readme_workflow_passes_actionlint(tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "cluster.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(readme_workflow())
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: an unknown expression context and a shell error are reported."""
    workflow = tmp_path / ".github" / "workflows" / "broken.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ secret.TOKEN }}\n      - run: cd $DIR && [ -f x ]\n"
    )
    result = actionlint(workflow)
    assert result.returncode == 1
    assert 'undefined variable "secret"' in result.stdout
    assert "shellcheck" in result.stdout


def test_the_readme_workflow_plans_pull_requests_and_fails_on_drift_at_night() -> None:
    jobs = yaml.safe_load(readme_workflow())["jobs"]
    steps = {s.get("name", s.get("run", "")): s for s in jobs["hk8s"]["steps"]}
    plan = next(s for n, s in steps.items() if n.startswith("plan"))
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert plan["run"].endswith("|| test $? -eq 3")  # 3 = changes pending: not a failure here
    drift = next(s for n, s in steps.items() if n.startswith("drift"))
    assert drift["run"] == "hk8s plan -f cluster.yaml"  # exit 3 fails the nightly run


def test_nightly_e2e_cleans_up_in_every_outcome_and_never_shares_the_project() -> None:
    nightly = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly-e2e.yml").read_text())
    assert nightly["concurrency"]["cancel-in-progress"] is False
    steps = nightly["jobs"]["lifecycle"]["steps"]
    cleanup = steps[-1]
    assert cleanup["if"] == "always()"
    assert "tests/live_sweep.py" in cleanup["run"] and "--fail-if-deleted" in cleanup["run"]
    for step in steps:  # the token travels in the environment only, never on a command line
        assert "HCLOUD_TOKEN" not in step.get("run", "")
