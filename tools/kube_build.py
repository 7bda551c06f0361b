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

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "tools" / "kube"
COMMANDS = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "etcd": "go.etcd.io/etcd/server/v3",
}
_VERSION_PACKAGES = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


def release() -> str:
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", _read("go.mod"), re.M)
    if not match:
        raise SystemExit("tools/kube/go.mod does not require k8s.io/kubernetes")
    return match[1]


def _read(name: str) -> str:
    return (MODULE / name).read_text()


def output_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hk8s" / "kube" / release()


def _stamp() -> str:
    digest = hashlib.sha256((_read("go.mod") + _read("go.sum")).encode()).hexdigest()
    return f"{digest}\n"


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


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("go is not on PATH: the Kubernetes control plane is built with Go")
    return go


def _count_packages(go: str) -> int:
    listed = subprocess.run(
        [go, "list", "-deps", *COMMANDS.values()],
        cwd=MODULE, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return len(listed.stdout.split())


def build() -> Path:
    out = output_dir()
    stamp = out / ".built-from"
    built = stamp.exists() and stamp.read_text() == _stamp()
    if built and all((out / name).exists() for name in COMMANDS):
        return out
    go, version = _go(), release()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _say(f"building Kubernetes {version} (etcd, kube-apiserver, kube-controller-manager, "
         f"kube-scheduler) from the Go module proxy into {out}")  # fmt: skip
    total = _count_packages(go)
    started, done, last = time.monotonic(), 0, 0.0
    # -v names each package as it is compiled (or found in Go's build cache): the progress.
    for name, package in COMMANDS.items():
        flags = _ldflags(version) if name != "etcd" else "-s -w"
        proc = subprocess.Popen(
            [go, "build", "-v", "-trimpath", f"-ldflags={flags}", "-o", str(tmp / name), package],
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
                _say(f"  {name}: {min(done, total)}/{total} packages compiled, "
                     f"{now - started:.0f} s")  # fmt: skip
        if proc.wait() != 0:
            sys.stderr.write("".join(errors))
            raise SystemExit(f"building {name} failed (exit {proc.returncode})")
    (tmp / ".built-from").write_text(_stamp())
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    _say(f"built in {time.monotonic() - started:.0f} s: {out}")
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--print"]:
        _say(str(output_dir()))
    else:
        build()
