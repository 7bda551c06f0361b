"""Build the simulated world's Helm and unpack the addon charts it installs with it.

    python tools/helm_build.py            # make kube: build once, then a no-op
    python tools/helm_build.py --print    # the folder helm and the charts are (or will be) in

Helm is the release ``tools/helm/go.mod`` pins (the one the addon Jobs run on real clusters),
built from the Go module proxy. The charts are the sources of the Go modules
``tools/helm/charts/go.mod`` requires, fetched and checked against its ``go.sum`` by ``go mod
download``; ``CHART_DIRECTORIES`` names where in each module its chart is. Everything goes to
``~/.cache/hk8s/helm/<release>/`` (``helm`` and ``charts/<chart>-<version>/``), outside the work
tree, with a stamp of the go.mod/go.sum files it came from: a changed pin rebuilds, an unchanged
one costs nothing. The world finds it there (``hk8s.sim.machines._helmbin``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "tools" / "helm"
CHARTS = MODULE / "charts"
# Where each chart-source module keeps the chart.
CHART_DIRECTORIES = {
    "github.com/cilium/cilium": "install/kubernetes/cilium",
    "sigs.k8s.io/metrics-server": "charts/metrics-server",
}
_FILES = (MODULE / "go.mod", MODULE / "go.sum", CHARTS / "go.mod", CHARTS / "go.sum")


def release() -> str:
    text = (MODULE / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?helm\.sh/helm/v3\s+(v\S+)", text, re.M)
    if not match:
        raise SystemExit("tools/helm/go.mod does not require helm.sh/helm/v3")
    return match[1]


def output_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hk8s" / "helm" / release()


def _stamp() -> str:
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in _FILES)).hexdigest()
    return f"{digest}\n"


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise SystemExit("go is not on PATH: Helm and the chart sources come through Go")
    return go


def _unpack_charts(go: str, into: Path) -> list[str]:
    """Each chart of ``tools/helm/charts`` into ``into/<chart>-<version>``; their names."""
    done = subprocess.run(
        [go, "mod", "download", "-json", *CHART_DIRECTORIES],
        cwd=CHARTS, capture_output=True, text=True, check=False,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )  # fmt: skip
    decoder, text, index, unpacked = json.JSONDecoder(), done.stdout, 0, []
    while index < len(text.rstrip()):
        download, index = decoder.raw_decode(text, index)
        index += len(text[index:]) - len(text[index:].lstrip())
        error = download.get("Error", "")
        # A module whose go.mod names a newer Go than this one is still downloaded and checked
        # (its Zip and Sum are there): only building it would need that Go.
        if not download.get("Zip") or (error and " requires go >= " not in error):
            raise SystemExit(f"{download.get('Path')}: {error or done.stderr.strip()}")
        prefix = f"{download['Path']}@{download['Version']}/{CHART_DIRECTORIES[download['Path']]}/"
        folder = into / "partial"
        shutil.rmtree(folder, ignore_errors=True)
        with zipfile.ZipFile(download["Zip"]) as archive:
            for name in archive.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    target = folder / name.removeprefix(prefix)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
        meta = (folder / "Chart.yaml").read_text()
        name = re.search(r"^name:\s*(\S+)", meta, re.M)
        version = re.search(r"^version:\s*(\S+)", meta, re.M)
        if not (name and version):
            raise SystemExit(f"{prefix}Chart.yaml names no chart name and version")
        final = into / f"{name[1]}-{version[1].strip(chr(34))}"
        shutil.rmtree(final, ignore_errors=True)
        folder.rename(final)
        unpacked.append(final.name)
    if done.returncode and not unpacked:
        raise SystemExit(done.stderr.strip())
    return unpacked


def build() -> Path:
    out = output_dir()
    stamp = out / ".built-from"
    if stamp.exists() and stamp.read_text() == _stamp() and (out / "helm").exists():
        return out
    go = _go()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "charts").mkdir(parents=True)
    _say(f"building Helm {release()} and unpacking the addon charts into {out}")
    flags = f"-s -w -X helm.sh/helm/v3/internal/version.version={release()}"
    subprocess.run(
        [go, "build", "-trimpath", f"-ldflags={flags}", "-o", str(tmp / "helm"),
         "helm.sh/helm/v3/cmd/helm"],
        cwd=MODULE, check=True,
    )  # fmt: skip
    charts = _unpack_charts(go, tmp / "charts")
    (tmp / ".built-from").write_text(_stamp())
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    _say(f"helm {release()} and charts {', '.join(sorted(charts))}: {out}")
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--print"]:
        _say(str(output_dir()))
    else:
        build()
