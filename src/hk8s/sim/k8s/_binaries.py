"""Where the real control plane's binaries are: built by ``make kube``, cached per release.

The release is pinned once, in ``tools/kube/go.mod`` (``require k8s.io/kubernetes``); this
module names the same release so an installed hk8s finds the build, and a unit test keeps the
two equal. The binaries live outside the work tree, in ``~/.cache/hk8s/kube/<release>/``
(``$XDG_CACHE_HOME`` honoured), or wherever ``HK8S_KUBE_BIN`` points.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BIN_ENV",
    "KUBERNETES_RELEASE",
    "Binaries",
    "BinariesMissing",
    "cache_dir",
    "find_binaries",
]

# k8s.io/kubernetes from the Go module proxy (served on 2026-12-01; v1.36.5, hk8s' default for
# Talos 1.14, was not served). Its etcd is the one k8s.io/kubernetes v1.36.3 requires: v3.6.8.
KUBERNETES_RELEASE = "v1.36.3"
BIN_ENV = "HK8S_KUBE_BIN"
_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class BinariesMissing(RuntimeError):
    """The control plane is not built; the message says how to build it."""


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    apiserver: Path
    controller_manager: Path
    scheduler: Path
    release: str = KUBERNETES_RELEASE


def cache_dir(release: str = KUBERNETES_RELEASE, kind: str = "kube") -> Path:
    """Where ``make kube`` builds ``kind`` (kube, helm) at ``release``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hk8s" / kind / release


def find_binaries() -> Binaries:
    """The built binaries, or ``BinariesMissing`` naming what is absent and the make target."""
    folder = Path(os.environ[BIN_ENV]) if os.environ.get(BIN_ENV) else cache_dir()
    paths = [folder / name for name in _NAMES]
    missing = [p.name for p in paths if not os.access(p, os.X_OK)]
    if missing:
        raise BinariesMissing(
            f"the simulated world runs a real Kubernetes {KUBERNETES_RELEASE} control plane, "
            f"and {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not built in "
            f"{folder}: run `make kube` (the first build takes 10-20 minutes), or point "
            f"{BIN_ENV} at a folder holding {', '.join(_NAMES)}"
        )
    etcd, apiserver, controller_manager, scheduler = paths
    return Binaries(etcd, apiserver, controller_manager, scheduler)
