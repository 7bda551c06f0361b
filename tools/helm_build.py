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

import json
import os
import re
import shutil
import subprocess
import zipfile
from typing import TYPE_CHECKING

from _cached_build import ROOT, build_once, cache_dir, go, main, pinned, say

if TYPE_CHECKING:
    from pathlib import Path

MODULE = ROOT / "tools" / "helm"
CHARTS = MODULE / "charts"
# Where each chart-source module keeps the chart.
CHART_DIRECTORIES = {
    "github.com/cilium/cilium": "install/kubernetes/cilium",
    "sigs.k8s.io/metrics-server": "charts/metrics-server",
}
_SOURCES = (MODULE / "go.mod", MODULE / "go.sum", CHARTS / "go.mod", CHARTS / "go.sum")


def release() -> str:
    return pinned(MODULE / "go.mod", "helm.sh/helm/v3")


def output_dir() -> Path:
    return cache_dir("helm", release())


def _unpack_charts(compiler: str, into: Path) -> list[str]:
    """Each chart of ``tools/helm/charts`` into ``into/<chart>-<version>``; their names."""
    done = subprocess.run(
        [compiler, "mod", "download", "-json", *CHART_DIRECTORIES],
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
    return build_once(output_dir(), _SOURCES, ["helm", "charts"], _make)


def _make(into: Path) -> None:
    compiler = go()
    say(f"building Helm {release()} and unpacking the addon charts into {output_dir()}")
    flags = f"-s -w -X helm.sh/helm/v3/internal/version.version={release()}"
    subprocess.run(
        [compiler, "build", "-trimpath", f"-ldflags={flags}", "-o", str(into / "helm"),
         "helm.sh/helm/v3/cmd/helm"],
        cwd=MODULE, check=True,
    )  # fmt: skip
    (into / "charts").mkdir()
    charts = _unpack_charts(compiler, into / "charts")
    say(f"helm {release()} and charts {', '.join(sorted(charts))}")


if __name__ == "__main__":
    main(build, output_dir)
