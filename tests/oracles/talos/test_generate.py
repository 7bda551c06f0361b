"""Differential test: hk8s' configs against machinery's generator, same bundle and options.

``generate.NewInput`` gets what hk8s also decides (cluster name, endpoint, Kubernetes version,
the Talos release's contract, install disk and image, extra SANs, CNI ``none``, scheduling
on control planes when there are no workers); every remaining difference must be one of the
intended additions below, each with its reason, and each must still be there (an addition
that disappears is a change to review too).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

import _reference  # type: ignore[import-not-found]
from hk8s.config import parse_config
from hk8s.machineconfig import installer_image, render_machine_config
from hk8s.pki import load_secrets

if TYPE_CHECKING:
    from .conftest import Oracle  # type: ignore[import-not-found]

ENDPOINT = "203.0.113.10"
SUBNET = "10.0.1.0/24"
ABSENT = "<absent>"

# path in the v1alpha1 document -> (machinery's value, hk8s' value), per role.
_BOTH: dict[str, tuple[Any, Any]] = {
    # design.md section 3: the v1alpha1 JSON schema has no `persist`; Talos persists anyway.
    "persist": (True, ABSENT),
    # The hcloud cloud-controller-manager: every kubelet runs with --cloud-provider=external.
    "cluster.externalCloudProvider.enabled": (ABSENT, True),
    # Kubelet registers the private IP, not the public one (the first routed address).
    "machine.kubelet.nodeIP.validSubnets": (ABSENT, [SUBNET]),
}
_CONTROL_PLANE: dict[str, tuple[Any, Any]] = {
    # etcd advertises the private IP: the lowest routed one may be public (issue 14, item 4).
    "cluster.etcd.advertisedSubnets": (ABSENT, [SUBNET]),
    # Cilium replaces kube-proxy.
    "cluster.proxy.disabled": (ABSENT, True),
    "cluster.proxy.image": ("registry.k8s.io/kube-proxy:v{kubernetes}", ABSENT),
}
# Talos 1.11 keeps the hostname in the v1alpha1 document: hk8s names nodes after their
# servers (`<cluster>-<pool>-<n>`); machinery leaves it to the stable default.
_ONLY_1_11: dict[str, tuple[Any, Any]] = {
    "machine.network": ({}, ABSENT),  # (an empty mapping where hk8s sets the hostname)
    "machine.network.hostname": (ABSENT, "{hostname}"),
}
# Machinery 1.11 lists the endpoint twice when it is an extra SAN too; hk8s lists it once.
_ONLY_1_11_CONTROL_PLANE: dict[str, tuple[Any, Any]] = {
    "cluster.apiServer.certSANs": ([ENDPOINT, ENDPOINT], [ENDPOINT]),
}


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def _intended(minor: str, control_plane: bool, **values: str) -> dict[str, tuple[Any, Any]]:
    wanted = dict(_BOTH)
    if control_plane:
        wanted.update(_CONTROL_PLANE)
    if minor == "1.11":
        wanted.update(_ONLY_1_11)
        if control_plane:
            wanted.update(_ONLY_1_11_CONTROL_PLANE)
    return {
        path: tuple(v.format(**values) if isinstance(v, str) else v for v in pair)  # type: ignore[misc]
        for path, pair in wanted.items()
    }


def _documents(text: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    main = next(d for d in docs if "kind" not in d)
    return main, {d["kind"]: d for d in docs if "kind" in d}


@pytest.mark.parametrize("workers", [1, 0], ids=["with-workers", "control-planes-only"])
def test_configs_differ_from_machinery_only_by_intended_additions(
    oracle: Oracle, tmp_path: Path, workers: int
) -> None:
    secrets = _reference.REFERENCE / "talos/secrets.example.yaml"
    bundle = load_secrets(secrets)
    kubernetes = {"1.11": "1.34.1"}.get(oracle.minor, "1.35.0")
    text = (
        f"name: demo\nlocation: fsn1\ntalos:\n  version: {oracle.release}\n"
        f"control_plane:\n  count: 3\nkubernetes:\n  version: {kubernetes}\n"
    )
    if workers:
        text += "workers:\n  - name: app\n    count: 1\n"
    cluster = parse_config(text)
    generated = oracle.run(
        "generate", "--secrets", secrets, "--name", "demo",
        "--endpoint", f"https://{ENDPOINT}:6443", "--kubernetes", kubernetes,
        "--talos", oracle.release, "--install-image", installer_image(cluster),
        "--install-disk", "/dev/sda", "--sans", ENDPOINT, "--cni", "none",
        f"--allow-scheduling-on-control-planes={'false' if workers else 'true'}",
        "--out", tmp_path,
    )  # fmt: skip
    pools = [p for p in cluster.pools() if p.count]
    for pool in pools:
        control_plane = pool.role == "control-plane"
        hostname = f"demo-{pool.name}-1"
        ours, ours_extra = _documents(
            render_machine_config(cluster, bundle, pool, endpoint=ENDPOINT, hostname=hostname)
        )
        theirs_path = generated["controlplane" if control_plane else "worker"]
        theirs, theirs_extra = _documents(Path(theirs_path).read_text())
        mine, upstream = _flat(ours), _flat(theirs)
        differences = {
            path: (upstream.get(path, ABSENT), mine.get(path, ABSENT))
            for path in sorted(set(mine) | set(upstream))
            if mine.get(path, ABSENT) != upstream.get(path, ABSENT)
        }
        assert differences == _intended(
            oracle.minor, control_plane, kubernetes=kubernetes, hostname=hostname
        ), f"{pool.role} config differs from machinery {oracle.release}"
        # Talos 1.12+: the hostname document. hk8s names the node; machinery picks `stable`.
        assert set(ours_extra) == set(theirs_extra)
        if "HostnameConfig" in theirs_extra:
            assert theirs_extra["HostnameConfig"].get("auto") == "stable"
            assert ours_extra["HostnameConfig"] == {
                "apiVersion": "v1alpha1", "kind": "HostnameConfig", "hostname": hostname,
            }  # fmt: skip
