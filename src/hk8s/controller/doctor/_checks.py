"""The checks of ``hk8s doctor``, as pure functions of what was observed.

Each returns the ``Problem``s it found, each naming its subject and the fix, so one broken
thing is reported once, by the check that owns it. ``doctor._command`` gathers the observations.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hk8s.config import ADDON_CHARTS
from hk8s.config import version_problems as matrix_problems
from hk8s.controller._releases import talos_tag

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from cryptography import x509

    from hk8s.config import ClusterConfig
    from hk8s.model.resources import Firewall
    from hk8s.providers.talos import EtcdMemberStatus

__all__ = [
    "EXPIRY_WARNING",
    "Problem",
    "backup_problems",
    "certificate_problems",
    "deployed_chart_problems",
    "etcd_problems",
    "firewall_problems",
    "kubeconfig_certificates",
    "node_version_problems",
    "orphan_problems",
    "talosconfig_certificates",
    "version_problems",
]

# Renew before this: Talos' own client certs last a year, and a cluster CA that expires takes
# every node's API with it.
EXPIRY_WARNING = dt.timedelta(days=30)
_TALOS_PORT, _KUBE_PORT = "50000", "6443"


@dataclass(frozen=True)
class Problem:
    check: str
    subject: str
    problem: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "subject": self.subject,
            "problem": self.problem,
            "fix": self.fix,
        }


def version_problems(config: ClusterConfig) -> list[Problem]:
    """cluster.yaml's versions against the version matrix (``hk8s version --matrix``): Talos
    and Kubernetes, each enabled addon chart's Kubernetes range and the providers' minimums
    (hcloud-cloud-controller-manager >= 1.30.1 since Hetzner removed ``datacenter``)."""
    charts = {
        name: addon.version for name, addon in config.addons.configured().items() if addon.enabled
    }
    # A chart at hk8s' default is never the culprit (the matrix blames kubernetes.version).
    pinned = [name for name, version in charts.items() if version != ADDON_CHARTS[name].version]
    found = matrix_problems(config.talos.version, config.kubernetes.version, charts, pinned=pinned)
    return [
        Problem("versions", ".".join(p.path), p.message, p.hint + "; then run `hk8s upgrade`")
        for p in found
    ]


def deployed_chart_problems(
    config: ClusterConfig, deployed: Mapping[str, str], jobs: Mapping[str, tuple[str, str]]
) -> list[Problem]:
    """Charts Helm has deployed (release -> chart version) against the version matrix.

    cluster.yaml says what ``create`` would install; the cluster may run something else (an
    interrupted create, a ``helm upgrade`` by hand, a pin changed back). A deployed version
    equal to cluster.yaml's is judged by ``version_problems`` already, so it is not reported
    twice; any other deployed version outside the matrix is reported once, under its release.
    ``jobs``: addon -> (namespace, name) of the installer Job ``create`` runs for cluster.yaml's
    chart; it runs only when no Job of that name exists (``_addons``), so the fix deletes it.
    """
    found = []
    configured = config.addons.configured()
    for name, chart in ADDON_CHARTS.items():
        version = deployed.get(chart.release)
        addon = configured[name]
        if version is None or (addon.enabled and version == addon.version):
            continue
        for p in matrix_problems(
            config.talos.version, config.kubernetes.version, {name: version}, pinned=[name]
        ):
            if addon.enabled:
                namespace, job = jobs[name]
                fix = (
                    f"`kubectl -n {namespace} delete job {job} --ignore-not-found`, then "
                    f"`hk8s create -f <config>` installs chart {addon.version} (cluster.yaml's)"
                )
            else:
                fix = (
                    f"the addon is disabled in cluster.yaml: `helm uninstall {chart.release} "
                    f"-n {chart.namespace}`, or enable it ({p.hint})"
                )
            found.append(
                Problem("versions", f"deployed {chart.release} chart {version}",
                        p.message.replace(f"{name} chart {version} ", "", 1), fix)
            )  # fmt: skip
    return found


def node_version_problems(
    config: ClusterConfig, talos: Mapping[str, str], kubelets: Mapping[str, str]
) -> list[Problem]:
    """Nodes whose Talos or Kubernetes version differs from cluster.yaml (and so the rest)."""
    want_talos = talos_tag(config.talos.version)
    want_kube = "v" + config.kubernetes.version.removeprefix("v")
    found = []
    for name, tag in sorted(talos.items()):
        if tag != want_talos:
            found.append(
                Problem(
                    "node versions",
                    name,
                    f"runs Talos {tag}, cluster.yaml says {want_talos}",
                    "`hk8s upgrade -f <config>` rolls it to the configured release",
                )
            )
    for name, version in sorted(kubelets.items()):
        if version != want_kube:
            found.append(
                Problem(
                    "node versions",
                    name,
                    f"runs Kubernetes {version}, cluster.yaml says {want_kube}",
                    "`hk8s upgrade -f <config>` rolls it to the configured version",
                )
            )
    return found


def certificate_problems(
    certs: Iterable[tuple[str, x509.Certificate, str]], now: dt.datetime
) -> list[Problem]:
    """Certificates expired or expiring within ``EXPIRY_WARNING``: (subject, cert, fix)."""
    found = []
    for subject, cert, fix in certs:
        expires = cert.not_valid_after_utc
        when = expires.strftime("%Y-%m-%d %H:%M UTC")
        if expires <= now:
            found.append(Problem("certificates", subject, f"expired on {when}", fix))
        elif expires - now <= EXPIRY_WARNING:
            days = (expires - now).days
            found.append(
                Problem("certificates", subject, f"expires in {days} day(s), on {when}", fix)
            )
    return found


def _load(pem: bytes) -> x509.Certificate:
    from hk8s.pki import load_certificate

    return load_certificate(pem)


def talosconfig_certificates(
    doc: Mapping[str, Any], source: str
) -> list[tuple[str, x509.Certificate]]:
    """The client certificate of every context of a talosconfig."""
    found = []
    for name, context in (doc.get("contexts") or {}).items():
        crt = (context or {}).get("crt")
        if crt:
            found.append((f"{source} context {name}", _load(base64.b64decode(crt))))
    return found


def kubeconfig_certificates(
    doc: Mapping[str, Any], source: str
) -> list[tuple[str, x509.Certificate]]:
    """The client certificate of every user of a kubeconfig (token users have none)."""
    found = []
    for user in doc.get("users") or []:
        data = (user.get("user") or {}).get("client-certificate-data")
        if data:
            found.append((f"{source} user {user.get('name')}", _load(base64.b64decode(data))))
    return found


_ALARM_FIX = (
    "an alarm such as NOSPACE needs the database compacted and defragmented and the alarm "
    "disarmed (`talosctl etcd defrag`, `talosctl etcd alarm disarm`); take `hk8s etcd "
    "snapshot` first"
)


def _alarm(error: str) -> tuple[int, str] | None:
    """``memberID:<id> alarm:<type>`` (etcd's ``AlarmMember.String()``) -> (id, type)."""
    fields = dict(part.split(":", 1) for part in error.split() if ":" in part)
    if "alarm" not in fields or not fields.get("memberID", "").isdigit():
        return None
    return int(fields["memberID"]), fields["alarm"]


def etcd_problems(
    statuses: Mapping[str, EtcdMemberStatus | str], control_planes: Sequence[str]
) -> list[Problem]:
    """Per control plane: etcd answers, sees a leader, is a voter, reports no error.

    Alarms are cluster-wide in etcd (every member's Status lists all of them): each is
    reported once, under the member that raised it.
    """
    found = []
    names = {s.member_id: n for n, s in statuses.items() if not isinstance(s, str)}
    alarms: dict[tuple[int, str], None] = {}
    for name in control_planes:
        status = statuses[name]
        if isinstance(status, str):
            found.append(
                Problem("etcd", name, f"etcd does not answer: {status}",
                        "`hk8s health -f <config>` and the node's etcd logs show why")
            )  # fmt: skip
            continue
        errors = []
        for error in status.errors:
            alarm = _alarm(error)
            if alarm is None:
                errors.append(error)
            else:
                alarms[alarm] = None
        if errors:
            found.append(
                Problem("etcd", name, "etcd reports " + "; ".join(errors),
                        "`hk8s health -f <config>` and the node's etcd logs show why")
            )  # fmt: skip
        elif not status.leader:
            found.append(
                Problem("etcd", name, "etcd sees no leader (quorum lost)",
                        "bring the other control planes back; if they are gone, restore from a "
                        "snapshot per Talos' disaster-recovery guide")
            )  # fmt: skip
        elif status.is_learner:
            found.append(
                Problem("etcd", name, "etcd member is still a learner",
                        "re-run `hk8s create -f <config>`, which waits for it to be promoted")
            )  # fmt: skip
    for member, kind in alarms:
        subject = names.get(member, f"etcd member {member:x}")
        found.append(Problem("etcd", subject, f"etcd alarm:{kind} is raised", _ALARM_FIX))
    return found


def _stamp(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def backup_problems(
    config: ClusterConfig, cronjob: Mapping[str, Any] | None, now: dt.datetime
) -> list[Problem]:
    """With ``backup:``: the CronJob exists, and a backup succeeded at one of the last two
    scheduled times (one failed run may be a blip; two in a row is a problem)."""
    from hk8s.model.cron import CronError, parse_cron

    backup = config.backup
    if backup is None:
        return []
    subject = "kube-system/hk8s-etcd-backup"
    if cronjob is None:
        return [Problem("backups", subject, "backup: is in cluster.yaml but the CronJob is "
                        "missing", "`hk8s create -f <config>` installs it")]  # fmt: skip
    try:
        schedule = parse_cron(backup.schedule)
    except CronError:
        return []  # config validation reports it
    created = _stamp((cronjob.get("metadata") or {}).get("creationTimestamp"))
    succeeded = _stamp((cronjob.get("status") or {}).get("lastSuccessfulTime"))
    # The second-latest scheduled time before now: a success since then is recent enough.
    times: list[dt.datetime] = []
    for window in (1, 32, 400):  # days back: a minutely schedule needs only the first
        moment = schedule.next_after(now - dt.timedelta(days=window))
        while moment <= now:
            times = [*times[-1:], moment]
            moment = schedule.next_after(moment)
        if len(times) == 2:
            break
    if len(times) < 2 or (created is not None and created > times[0]):
        return []  # not yet scheduled twice since the CronJob was made
    if succeeded is not None and succeeded >= times[0]:
        return []
    if succeeded is None:
        what = f"no backup has succeeded since {times[0]:%Y-%m-%d %H:%M} UTC or before"
    else:
        what = (f"the last successful backup was at {succeeded:%Y-%m-%d %H:%M} UTC; the "
                "runs scheduled since did not succeed")  # fmt: skip
    return [
        Problem("backups", subject, what,
                "`kubectl -n kube-system logs job/<latest hk8s-etcd-backup job>` shows why: "
                "check the S3 credentials, endpoint and bucket in cluster.yaml's backup section")
    ]  # fmt: skip


def _covers(sources: Iterable[str], ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in ipaddress.ip_network(s, strict=False) for s in sources)


def firewall_problems(firewall: Firewall | None, my_ip: str | None, name: str) -> list[Problem]:
    """The cluster firewall must still let this operator reach the Kubernetes and Talos APIs."""
    if firewall is None:
        return [Problem("firewall", name, "the cluster's firewall does not exist",
                        "`hk8s infra -f <config>` creates it")]  # fmt: skip
    if my_ip is None:
        return []
    found = []
    for port, api in ((_KUBE_PORT, "Kubernetes API"), (_TALOS_PORT, "Talos API")):
        sources = [s for r in firewall.rules if r.direction == "in" and r.port == port
                   for s in r.source_ips]  # fmt: skip
        if not _covers(sources, my_ip):
            found.append(
                Problem("firewall", f"{firewall.name} port {port}",
                        f"the {api} no longer admits your IP {my_ip}",
                        "with `current` in firewall sources, `hk8s infra -f <config>` re-resolves "
                        "it; otherwise add your IP to the sources in cluster.yaml")
            )  # fmt: skip
    return found


def orphan_problems(
    found: Mapping[str, Iterable[str]], wanted: Mapping[str, set[str]]
) -> list[Problem]:
    """Resources with the cluster's label that cluster.yaml no longer accounts for."""
    problems = []
    for kind, names in found.items():
        for name in sorted(set(names) - wanted.get(kind, set())):
            problems.append(
                Problem("orphans", f"{kind} {name}",
                        "carries the cluster's label but cluster.yaml does not account for it",
                        "`hk8s plan -f <config>` shows whether create removes it; otherwise "
                        "delete it in the Hetzner console if nothing uses it")
            )  # fmt: skip
    return problems
