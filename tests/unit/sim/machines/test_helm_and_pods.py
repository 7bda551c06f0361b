"""The pure parts of the simulated machines: how a helm installer pod's command is read (as
helm 3 parses it), and what a plain Job container's command exits with."""

from __future__ import annotations

from typing import Any, cast

import pytest

from hk8s.sim.machines._helm import HelmError, _install, _parse, helm_argv, release_name
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


async def test_an_upgrade_patches_what_exists_without_a_version_precondition() -> None:
    # helm 3's update of an existing object is a patch: a DaemonSet whose status its
    # controller rewrote after helm read it is updated, not refused with a conflict.
    calls: list[tuple[str, str, dict[str, Any]]] = []
    existing = {"metadata": {"name": "csi-node", "resourceVersion": "41"}, "status": {"x": 1}}

    class Api:
        async def get_or_none(self, path: str) -> dict[str, Any]:
            return existing

        async def patch(self, path: str, body: dict[str, Any], *, kind: str) -> dict[str, Any]:
            calls.append((path, kind, body))
            return body

    class Kinds:
        api = Api()

        async def namespaced(self, api_version: str, kind: str) -> bool:
            return True

        async def path(self, api_version: str, kind: str, namespace: str, name: str) -> str:
            return f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"

    rendered = {"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "csi-node"}, "spec": {"template": {}}}  # fmt: skip
    await _install(cast("Any", Kinds()), rendered, "hcloud-csi", "kube-system", "hcloud-csi-2")
    [(path, kind, body)] = calls
    assert path.endswith("/daemonsets/csi-node") and kind == "merge"
    assert "resourceVersion" not in body["metadata"] and "status" not in body
    assert body["metadata"]["annotations"]["meta.helm.sh/release-name"] == "hcloud-csi"
