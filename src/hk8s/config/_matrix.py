"""Rules over the version matrix in ``_versions``: what may run together, and upgrade paths.

Pure functions returning problems (``config validate`` reports them with YAML paths) or
plain data (``hk8s version --matrix``). A chart release newer than any hk8s has checked is
not refused: hk8s cannot know its range, and pinning a newer chart is how a user moves ahead
of hk8s' pins.

>>> version_problems("v1.14.1", "1.37.2", {"hcloud_ccm": "1.35.0"})
[VersionProblem(path=('addons', 'hcloud_ccm', 'version'), message='hcloud_ccm chart 1.35.0 ...
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hk8s.config._versions import (
    ADDON_CHARTS,
    CHART_LINES,
    DEFAULT_KUBERNETES_VERSIONS,
    DEFAULT_TALOS_VERSION,
    HELM_IMAGE,
    PROVIDER_MINIMUMS,
    TALOS_BACKUP_IMAGE,
    TALOS_RELEASES,
    ChartLine,
    TalosRelease,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

__all__ = [
    "VersionProblem",
    "chart_line",
    "matrix_data",
    "parse_semver",
    "talos_release",
    "talos_upgrade_problem",
    "version_problems",
]

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class VersionProblem:
    """A combination outside the matrix: where in cluster.yaml, what, and what to do."""

    path: tuple[str, ...]
    message: str
    hint: str


def parse_semver(text: str) -> tuple[int, int, int]:
    """``v1.14.1`` / ``1.36.5`` / ``1.20.0-pre.1`` -> ``(1, 14, 1)``; ValueError otherwise."""
    match = _SEMVER.match(text.strip())
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return int(match[1]), int(match[2]), int(match[3])


def talos_release(version: str) -> TalosRelease | None:
    """The matrix entry for ``v1.14.1``'s minor, None for a minor hk8s does not support."""
    major, minor, _ = parse_semver(version)
    return TALOS_RELEASES.get(f"{major}.{minor}")


def chart_line(addon: str, version: str) -> ChartLine | None:
    """The checked release line ``version`` of ``addon``'s chart belongs to, if any."""
    wanted = parse_semver(version)
    for line in CHART_LINES:
        if line.addon == addon and parse_semver(line.first) <= wanted <= parse_semver(line.last):
            return line
    return None


def version_problems(
    talos: str | None,
    kubernetes: str | None,
    charts: Mapping[str, str],
    *,
    pinned: Collection[str] = (),
) -> list[VersionProblem]:
    """Every way the Talos, Kubernetes and (enabled) chart versions break the matrix.

    ``charts`` maps addon keys (``hcloud_ccm``) to chart versions; leave disabled addons out.
    ``pinned`` names the addons whose version the user wrote: a default chart is never the
    culprit, so a Kubernetes version hk8s' default chart does not support is reported at
    ``kubernetes.version``. ``None`` for a version that did not validate on its own skips the
    rules that need it.
    """
    problems: list[VersionProblem] = []
    kube_minor = parse_semver(kubernetes)[1] if kubernetes else None
    release = talos_release(talos) if talos else None
    if (
        release is not None
        and kube_minor is not None
        and not release.kubernetes.contains(kube_minor)
    ):
        problems.append(
            VersionProblem(
                ("kubernetes", "version"),
                f"Kubernetes {kubernetes} is not supported by Talos {talos}",
                f"Talos {release.minor} supports Kubernetes {release.kubernetes}; "
                f"e.g. {release.default_kubernetes} ({release.source})",
            )
        )
    for addon, version in charts.items():
        path = ("addons", addon, "version") if addon in pinned else ("kubernetes", "version")
        which = f"{addon} chart {version}" + ("" if addon in pinned else " (hk8s' default)")
        minimum = PROVIDER_MINIMUMS.get(addon)
        if minimum is not None and parse_semver(version) < parse_semver(minimum.version):
            problems.append(
                VersionProblem(
                    path,
                    f"{which} is older than {minimum.version}: {minimum.reason}",
                    f"use {ADDON_CHARTS[addon].version} (hk8s' default) or at least "
                    f"{minimum.version} ({minimum.source})",
                )
            )
            continue
        line = chart_line(addon, version)
        if line is not None and kube_minor is not None and not line.kubernetes.contains(kube_minor):
            problems.append(
                VersionProblem(
                    path,
                    f"{which} supports Kubernetes {line.kubernetes}, not {kubernetes}",
                    _chart_hint(addon, kube_minor, line),
                )
            )
    return problems


def _chart_hint(addon: str, kube_minor: int, line: ChartLine) -> str:
    fitting = [x for x in CHART_LINES if x.addon == addon and x.kubernetes.contains(kube_minor)]
    if fitting:
        return (
            f"use chart {fitting[-1].last} or another release supporting 1.{kube_minor} "
            f"({line.source})"
        )
    newest = max((x.last for x in CHART_LINES if x.addon == addon), key=parse_semver)
    return (
        f"no {addon} release up to {newest} supports Kubernetes 1.{kube_minor}: pick another "
        f"kubernetes.version, or pin a newer chart release that does (hk8s does not check "
        f"releases it does not know) ({line.source})"
    )


def talos_upgrade_problem(current: str, target: str) -> str | None:
    """Why a node at Talos ``current`` cannot move to ``target`` in one step, or None.

    Upstream's rule (``compatibility.TalosVersion.UpgradeableFrom``): the node must run at
    least the target release's ``MinimumHostUpgradeVersion`` and, going down, be older than
    its ``MaximumHostDowngradeVersion``. So 1.14 is reachable from 1.12 and 1.13, not 1.11.
    """
    release = talos_release(target)
    if release is None:
        return f"Talos {target} is not a release hk8s supports"
    host = parse_semver(current)
    if host < parse_semver(release.upgrade_from):
        return (
            f"Talos {release.minor} can only be installed over Talos {release.upgrade_from} or "
            f"later ({release.source})"
        )
    if host >= parse_semver(release.downgrade_below):
        return (
            f"Talos {release.minor} can only be installed over releases older than "
            f"{release.downgrade_below} ({release.source})"
        )
    return None


def matrix_data() -> dict[str, Any]:
    """The whole matrix and the defaults, as plain data (``hk8s version --matrix -o json``)."""
    return {
        "defaults": {
            "talos": DEFAULT_TALOS_VERSION,
            "kubernetes": DEFAULT_KUBERNETES_VERSIONS,
            "charts": {name: chart.version for name, chart in ADDON_CHARTS.items()},
            "helm_image": HELM_IMAGE,
            "talos_backup_image": TALOS_BACKUP_IMAGE,
        },
        "talos": [
            {
                "minor": r.minor,
                "kubernetes": {"min": f"1.{r.kubernetes.low}", "max": f"1.{r.kubernetes.high}"},
                "upgrade_from": r.upgrade_from,
                "default_kubernetes": r.default_kubernetes,
                "source": r.source,
            }
            for r in TALOS_RELEASES.values()
        ],
        "charts": [
            {
                **{k: v for k, v in asdict(line).items() if k != "kubernetes"},
                "kubernetes": {
                    "min": f"1.{line.kubernetes.low}",
                    "max": None if line.kubernetes.high is None else f"1.{line.kubernetes.high}",
                },
            }
            for line in CHART_LINES
        ],
        "minimums": [asdict(m) for m in PROVIDER_MINIMUMS.values()],
    }
