"""``hk8s doctor``: read-only checks to run before an upgrade or when something is off.

With ``backup:``, the backup CronJob must exist and a backup must have succeeded at one of its
last two scheduled times. It changes nothing anywhere: it reads the Hetzner project (by label),
asks each node's Talos API for its version and etcd status, the Kubernetes API for its Nodes,
and the local files (secrets.yaml, talosconfig, kubeconfig) for their certificates. Every
problem names its subject and the fix (``doctor._checks``). A part that cannot be reached is
itself a problem of the check that needed it; the other checks still run.

    report = await diagnose(hcloud, talos, kube, access, files, my_ip=ip, now=now)
    report.healthy                # False: report.problems says what, where, and the fix
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from hk8s.controller._addons_plan import read_deployed_charts
from hk8s.controller._claim import claim_name
from hk8s.controller._inventory import observe_cluster
from hk8s.controller._servers import desired_servers
from hk8s.controller.doctor._checks import (
    Problem,
    backup_problems,
    certificate_problems,
    deployed_chart_problems,
    etcd_problems,
    firewall_problems,
    kubeconfig_certificates,
    node_version_problems,
    orphan_problems,
    talosconfig_certificates,
    version_problems,
)
from hk8s.controller.infra._component import infra_intent
from hk8s.controller.infra._desired import desired_infra
from hk8s.errors import Hk8sError

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from cryptography import x509

    from hk8s.controller._access import ClusterAccess
    from hk8s.providers.hcloud import HcloudPort
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.talos import EtcdMemberStatus, VersionInfo

__all__ = ["CHECKS", "DoctorFiles", "DoctorReport", "DoctorTalosPort", "diagnose"]

CHECKS = ("versions", "node versions", "certificates", "etcd", "backups", "firewall", "orphans")


class DoctorTalosPort(Protocol):
    async def version(self, node: str, *, maintenance: bool = False) -> VersionInfo: ...

    async def etcd_status(self, node: str) -> EtcdMemberStatus: ...


@dataclass(frozen=True)
class DoctorFiles:
    """Local files whose certificates are checked (missing ones are skipped)."""

    talosconfig: Path
    kubeconfig: Path
    secrets: Path


@dataclass
class DoctorReport:
    cluster: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def by_check(self) -> dict[str, list[Problem]]:
        return {name: [p for p in self.problems if p.check == name] for name in CHECKS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "healthy": self.healthy,
            "checks": [
                {"check": name, "ok": not found, "problems": [p.to_dict() for p in found]}
                for name, found in self.by_check().items()
            ],
        }


def _certificates(
    access: ClusterAccess, files: DoctorFiles, unreadable: list[Problem]
) -> list[tuple[str, x509.Certificate, str]]:
    bundle = access.bundle
    rotate = "rotate it before it expires (Talos: `talosctl rotate-ca`); nodes stop trusting it"
    certs = [
        (f"{files.secrets.name} {label}", pair.cert, rotate)
        for label, pair in (
            ("os CA", bundle.os_ca),
            ("Kubernetes CA", bundle.k8s_ca),
            ("etcd CA", bundle.etcd_ca),
            ("aggregator CA", bundle.k8s_aggregator_ca),
        )
    ]
    for path, read, command in (
        (files.talosconfig, talosconfig_certificates, "talosconfig"),
        (files.kubeconfig, kubeconfig_certificates, "kubeconfig"),
    ):
        if not path.is_file():
            continue
        fix = f"`hk8s {command} -f <config>` writes a fresh one"
        try:
            doc = yaml.safe_load(path.read_text()) or {}
            certs += [(label, cert, fix) for label, cert in read(doc, path.name)]
        except (OSError, ValueError, AttributeError, yaml.YAMLError) as exc:
            # binascii.Error and cryptography's parse errors are ValueErrors.
            unreadable.append(
                Problem("certificates", path.name, f"cannot read its certificates: {exc}", fix)
            )
    return certs


async def _etcd(talos: DoctorTalosPort, access: ClusterAccess) -> list[Problem]:
    statuses: dict[str, EtcdMemberStatus | str] = {}
    for node in access.control_planes:
        try:
            statuses[node.name] = await talos.etcd_status(node.address)
        except Hk8sError as exc:
            statuses[node.name] = exc.message
    return etcd_problems(statuses, [n.name for n in access.control_planes])


async def _node_versions(
    talos: DoctorTalosPort, kube: KubernetesAPI, access: ClusterAccess
) -> list[Problem]:
    problems: list[Problem] = []
    tags: dict[str, str] = {}
    for node in access.nodes:
        try:
            tags[node.name] = (await talos.version(node.address)).tag
        except Hk8sError as exc:
            problems.append(
                Problem("node versions", node.name, f"Talos API does not answer: {exc.message}",
                        "`hk8s health -f <config>` shows whether the node is up")
            )  # fmt: skip
    try:
        kubelets = {n.name: n.kubelet_version or "" for n in await kube.list_nodes(retry=False)}
    except Hk8sError as exc:
        problems.append(
            Problem("node versions", "Kubernetes API", f"does not answer: {exc.message}",
                    "`hk8s health -f <config>` shows what is down")
        )  # fmt: skip
        kubelets = {}
    wanted = {n.name for n in access.nodes}
    kubelets = {name: v for name, v in kubelets.items() if name in wanted}
    return problems + node_version_problems(access.config, tags, kubelets)


async def _deployed_charts(kube: KubernetesAPI, access: ClusterAccess) -> list[Problem]:
    try:
        deployed = await read_deployed_charts(kube)
    except Hk8sError:
        return []  # an API that does not answer is the node versions check's problem, once
    from hk8s.providers.k8s import render_addon_manifests

    jobs = {}
    for name, addon in access.config.addons.configured().items():
        if addon.enabled:
            install = render_addon_manifests(access.config, name)
            jobs[name] = (install.job_namespace, install.job_name)
    return deployed_chart_problems(access.config, deployed, jobs)


async def _backups(kube: KubernetesAPI, access: ClusterAccess, now: dt.datetime) -> list[Problem]:
    if access.config.backup is None:
        return []
    from hk8s.controller._backup import observe_backup

    try:
        cronjob = await observe_backup(kube)
    except Hk8sError:
        return []  # an API that does not answer is the node versions check's problem, once
    return backup_problems(access.config, cronjob, now)


async def _hetzner(hcloud: HcloudPort, access: ClusterAccess, my_ip: str | None) -> list[Problem]:
    config = access.config
    observed = await observe_cluster(hcloud, config.name)
    # Only names are read from the desired infra: without a known IP, a documentation
    # address (RFC 5737) stands in for ``current``.
    infra = desired_infra(infra_intent(config, my_ip or "192.0.2.1"))
    wanted = {
        "server": {s.name for s in desired_servers(config, cluster_id=access.bundle.cluster_id)},
        "network": {infra.network.name},
        "firewall": {infra.firewall.name},
        # ...and the claim create makes before any server (first writer wins, _create_claim)
        "placement group": {g.name for g in infra.placement_groups} | {claim_name(config.name)},
        "load balancer": {infra.load_balancer.name} if infra.load_balancer else set(),
    }
    found = {
        "server": [s.name for s in observed.servers],
        "network": [n.name for n in observed.networks],
        "firewall": [f.name for f in observed.firewalls],
        "placement group": [g.name for g in observed.placement_groups],
        "load balancer": [lb.name for lb in observed.load_balancers],
    }
    firewall = next((f for f in observed.firewalls if f.name == infra.firewall.name), None)
    return firewall_problems(firewall, my_ip, infra.firewall.name) + orphan_problems(found, wanted)


async def diagnose(
    hcloud: HcloudPort,
    talos: DoctorTalosPort,
    kube: KubernetesAPI,
    access: ClusterAccess,
    files: DoctorFiles,
    *,
    my_ip: str | None,
    now: dt.datetime,
) -> DoctorReport:
    """Run every check once; nothing is changed anywhere."""
    report = DoctorReport(access.config.name)
    report.problems += version_problems(access.config)
    etcd, versions, charts, backups, hetzner = await asyncio.gather(
        _etcd(talos, access),
        _node_versions(talos, kube, access),
        _deployed_charts(kube, access),
        _backups(kube, access, now),
        _hetzner(hcloud, access, my_ip),
    )
    report.problems += charts + versions + backups
    unreadable: list[Problem] = []
    report.problems += certificate_problems(_certificates(access, files, unreadable), now)
    report.problems += unreadable
    report.problems += etcd + hetzner
    order = {name: i for i, name in enumerate(CHECKS)}
    report.problems.sort(key=lambda p: order[p.check])
    return report
