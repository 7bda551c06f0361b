"""The pure parts of the simulated machines: how a helm installer pod's command is read (as
helm 3 parses it), and what a plain Job container's command exits with."""

from __future__ import annotations

import pytest

from hk8s.sim.machines._helm import HelmError, _parse, helm_argv, release_name
from hk8s.sim.machines._pods import exit_status


def pod(command: list[str], args: list[str] | None = None) -> dict[str, object]:
    container = {"name": "helm", "image": "alpine/helm", "command": command, "args": args or []}
    return {"spec": {"containers": [container]}}


def test_helm_argv_from_command_args_and_a_shell() -> None:
    argv = ["upgrade", "--install", "cilium", "cilium", "--repo", "https://helm.cilium.io"]
    assert helm_argv(pod(["helm"], argv)) == argv
    assert helm_argv(pod(["/bin/sh", "-c", "helm " + " ".join(argv)])) == argv
    assert helm_argv(pod(["sleep", "1"])) is None
    assert release_name(argv) == "cilium"


def test_flags_as_helm_parses_them() -> None:
    positional, options, flags = _parse(
        ["upgrade", "-i", "x", "c", "-n", "kube-system", "--values=/v/a.yaml", "-f", "/v/b.yaml"]
    )
    assert positional == ["upgrade", "x", "c"]
    assert options == {"--namespace": ["kube-system"], "--values": ["/v/a.yaml", "/v/b.yaml"]}
    assert flags == {"--install"}
    with pytest.raises(HelmError, match="unknown flag: --bogus"):
        _parse(["upgrade", "--bogus"])
    with pytest.raises(HelmError, match="flag needs an argument: --repo"):
        _parse(["upgrade", "--repo"])


@pytest.mark.parametrize(
    ("command", "code"),
    [(["false"], 1), (["sh", "-c", "exit 3"], 3), (["echo", "hi"], 0), ([], 0)],
)
def test_job_container_exit_codes(command: list[str], code: int) -> None:
    assert exit_status({"command": command}) == code
