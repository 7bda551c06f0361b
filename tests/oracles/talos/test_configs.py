"""Every machine config hk8s renders passes Talos' strict loader and cloud-mode validation.

For every example in ``configs/``, every supported Talos minor (rendered for the release the
oracle pins), every pool (both roles), as the file says and with a set of user patches on
top: ``configloader.NewFromBytes`` (unknown or misplaced fields are errors) then
``Validate`` in cloud mode with strict warnings, by that minor's machinery.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

import _reference  # type: ignore[import-not-found]
from hk8s.config import TALOS_KUBERNETES_SUPPORT, parse_config
from hk8s.errors import ConfigError
from hk8s.machineconfig import render_machine_config
from hk8s.pki import load_secrets

if TYPE_CHECKING:
    from .conftest import Oracle  # type: ignore[import-not-found]

CONFIGS = sorted((Path(__file__).parents[3] / "configs").glob("*.yaml"))
# What users patch in (docs and issues of Talos-on-Hetzner setups): sysctls and kubelet args
# on every node, API server flags and a file on control planes, a mount on workers.
USER_PATCHES: dict[str, list[dict[str, Any]]] = {
    "all": [{"machine": {"sysctls": {"net.core.somaxconn": "65535"},
                         "kubelet": {"extraArgs": {"max-pods": "150"}}}}],
    "control_plane": [{"cluster": {"apiServer": {"extraArgs": {"audit-log-maxage": "30"}}},
                       "machine": {"files": [{"path": "/var/etc/hk8s.txt", "op": "create",
                                              "permissions": 0o644, "content": "hello"}]}}],
    "worker": [{"machine": {"kubelet": {"extraMounts": [
        {"destination": "/var/lib/longhorn", "type": "bind", "source": "/var/lib/longhorn",
         "options": ["bind", "rshared", "rw"]}]}}}],
}  # fmt: skip


def _variants(path: Path, release: str) -> list[tuple[str, Any]]:
    raw = yaml.safe_load(path.read_text())
    raw.setdefault("talos", {})["version"] = release
    # A Kubernetes version this Talos minor supports (the newest, when the example's is not).
    low, high = TALOS_KUBERNETES_SUPPORT[".".join(release.lstrip("v").split(".")[:2])]
    kubernetes = raw.setdefault("kubernetes", {})
    minor = int(str(kubernetes.get("version", f"1.{high}.0")).lstrip("v").split(".")[1])
    if not low <= minor <= high:
        kubernetes["version"] = f"1.{high}.0"
    patched = yaml.safe_load(yaml.safe_dump(raw))
    patches = patched["talos"].setdefault("patches", {})
    for scope, extra in USER_PATCHES.items():
        patches[scope] = [*patches.get(scope, []), *extra]
    return [("as-is", parse_config(yaml.safe_dump(raw))),
            ("user-patches", parse_config(yaml.safe_dump(patched)))]  # fmt: skip


def test_every_rendered_config_passes_machinery(oracle: Oracle, tmp_path: Path) -> None:
    bundle = load_secrets(_reference.REFERENCE / "talos/secrets.example.yaml")
    files: list[Path] = []
    refused: dict[str, str] = {}
    for example in CONFIGS:
        for variant, cluster in _variants(example, oracle.release):
            for pool in cluster.pools():
                try:
                    text = render_machine_config(
                        cluster,
                        bundle,
                        pool,
                        endpoint="203.0.113.10",
                        hostname=f"{cluster.name}-{pool.name}-1",
                        cert_sans=("203.0.113.10", "10.0.1.2"),
                        schematic="a" * 64,  # what the factory answers for talos.extensions
                    )
                except ConfigError as exc:
                    # hk8s refusing a config (exit 2 before any change) is always safe; only
                    # a config hk8s renders must pass machinery. Recorded, and checked below.
                    refused[f"{example.stem}-{variant}-{pool.name}"] = str(exc)
                    continue
                out = tmp_path / f"{example.stem}-{variant}-{pool.name}-{pool.role}.yaml"
                out.write_text(text)
                files.append(out)
    roles = {f.stem.rsplit("-", 1)[-1] for f in files}
    assert roles == {"plane", "worker"}  # both roles seen (control-plane, worker)
    results = oracle.run("validate", *files)
    failures = {Path(r["file"]).name: r.get("error") or r["warnings"] for r in results
                if r.get("error") or r["warnings"]}  # fmt: skip
    assert not failures, f"machinery {oracle.release} refuses: {failures}"
    assert len(results) == len(files)
    # Only production.yaml's TimeSyncConfig document (Talos 1.12+) is refused, and only by 1.11.
    expected = {"production"} if oracle.release.startswith("v1.11.") else set()
    assert {name.split("-", 1)[0] for name in refused} == expected, refused
