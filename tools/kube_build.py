"""Build the simulated world's real Kubernetes control plane from upstream Go modules.

    python tools/kube_build.py            # make kube: build once, then a no-op
    python tools/kube_build.py --print    # the folder the binaries are (or will be) in

The release is the one ``tools/kube/go.mod`` requires (``k8s.io/kubernetes``, with etcd at the
version that release requires); the modules come through the Go module proxy and are checked
against the committed ``go.sum``. The binaries go to ``~/.cache/hk8s/kube/<release>/``, outside
the work tree, with a stamp of the go.mod/go.sum they were built from: a changed pin rebuilds,
an unchanged one costs nothing. The first build compiles about 3,000 packages: 10-20 minutes on
two cores, shown as it goes. Versions are stamped in as upstream's ``hack/lib/version.sh`` does,
so ``kubectl version`` and hk8s read the server as ``v1.36.3``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from _cached_build import ROOT, build_once, cache_dir, go, main, pinned, say

if TYPE_CHECKING:
    from pathlib import Path

MODULE = ROOT / "tools" / "kube"
COMMANDS = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "etcd": "go.etcd.io/etcd/server/v3",
}
_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


def release() -> str:
    return pinned(MODULE / "go.mod", "k8s.io/kubernetes")


def output_dir() -> Path:
    return cache_dir("kube", release())


def _ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for package in _VERSION_PACKAGES:
        flags += [
            f"-X {package}.gitVersion={version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def _count_packages(compiler: str) -> int:
    listed = subprocess.run(
        [compiler, "list", "-deps", *COMMANDS.values()],
        cwd=MODULE, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return len(listed.stdout.split())


def build() -> Path:
    out = output_dir()
    return build_once(out, [MODULE / "go.mod", MODULE / "go.sum"], list(COMMANDS), _compile)


def _compile(into: Path) -> None:
    compiler, version = go(), release()
    say(f"building Kubernetes {version} (etcd, kube-apiserver, kube-controller-manager, "
        f"kube-scheduler) from the Go module proxy into {output_dir()}")  # fmt: skip
    total = _count_packages(compiler)
    started, done, last = time.monotonic(), 0, 0.0
    # -v names each package as it is compiled (or found in Go's build cache): the progress.
    for name, package in COMMANDS.items():
        flags = _ldflags(version) if name != "etcd" else "-s -w"
        proc = subprocess.Popen(
            [compiler, "build", "-v", "-trimpath", f"-ldflags={flags}", "-o", str(into / name),
             package],
            cwd=MODULE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        errors: list[str] = []
        for line in proc.stderr:
            if re.match(r"^[\w.\-]+(/[\w.\-~]+)*$", line.strip()):
                done += 1
            else:
                errors.append(line)
            now = time.monotonic()
            if now - last > 5:
                last = now
                say(f"  {name}: {min(done, total)}/{total} packages compiled, "
                    f"{now - started:.0f} s")  # fmt: skip
        if proc.wait() != 0:
            sys.stderr.write("".join(errors))
            raise SystemExit(f"building {name} failed (exit {proc.returncode})")
    say(f"built in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main(build, output_dir)
