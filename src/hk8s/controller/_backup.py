"""Scheduled etcd backups: converge talos-backup's objects, plan them, and prune old backups.

``create`` applies the CronJob, its Talos ServiceAccount and (when hk8s read the credentials
from the environment) the S3 Secret whenever ``backup:`` is in cluster.yaml, and deletes them
when it is not: server-side apply makes a changed schedule or bucket an update of the same
CronJob. ``plan`` compares the CronJob's checksum annotation with the rendered one.

Retention lives here, run by ``hk8s etcd backups --prune``, not in the cluster: talos-backup
never deletes, and its pod holds credentials that should only write. The operator's (or CI's)
credentials list the bucket anyway; pruning where they are used needs no second in-cluster
component with delete rights, and a prune is a visible, logged command rather than a silent
job. (A bucket lifecycle rule is the alternative for ``max_age`` on stores that offer one.)
The newest backup is never deleted, whatever the rules say.

>>> prunable(objects, BackupRetention(keep=48, max_age="14d"), now=now)
[StoredObject(key='demo/demo-2026-11-01T00:00:00Z.snap.age', ...), ...]
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from hk8s.config import BACKUP_NAMESPACE, parse_duration
from hk8s.controller._plan import Change, Operation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hk8s.config import BackupRetention, ClusterConfig
    from hk8s.controller._waits import Waiter
    from hk8s.pki.sigv4 import Credentials
    from hk8s.providers.k8s import KubernetesAPI
    from hk8s.providers.s3 import StoredObject

__all__ = [
    "ObservedBackup",
    "backup_operations",
    "converge_backup",
    "observe_backup",
    "prunable",
]

ObservedBackup = dict[str, Any] | None  # the CronJob as the API returns it, or None


async def observe_backup(kube: KubernetesAPI) -> ObservedBackup:
    from hk8s.providers.k8s import BACKUP_CRONJOB

    return await kube.get("batch/v1", "CronJob", BACKUP_CRONJOB, namespace=BACKUP_NAMESPACE)


def backup_operations(config: ClusterConfig, observed: ObservedBackup) -> list[Operation]:
    """What ``create`` would do to the backup CronJob (and the objects that go with it)."""
    from hk8s.providers.k8s import BACKUP_CRONJOB, render_backup_manifests

    name = f"{BACKUP_NAMESPACE}/{BACKUP_CRONJOB}"
    if config.backup is None:
        if observed is None:
            return []
        return [Operation("delete", "etcd backup", name,
                          reason="cluster.yaml has no backup section")]  # fmt: skip
    # Credentials do not change the rendered CronJob; stand-ins keep plan free of them.
    from hk8s.pki.sigv4 import Credentials

    want = render_backup_manifests(config, credentials=Credentials("-", "-"))
    if observed is None:
        # The machine configs change with it: create applies them (no reboot) first.
        access = f"os:etcd:backup from {BACKUP_NAMESPACE}"
        return [
            Operation("create", "etcd backup", name,
                      reason=f"talos-backup on schedule {want.schedule!r}",
                      changes=(Change("schedule", None, want.schedule),
                               Change("control planes' Talos API access", None, access)))
        ]  # fmt: skip
    annotations = (observed.get("metadata") or {}).get("annotations") or {}
    if annotations.get("hk8s.io/checksum") == want.checksum:
        return []
    spec = observed.get("spec") or {}
    containers = (
        ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec", {})
    ).get("containers") or [{}]
    changes = []
    if spec.get("schedule") != want.schedule:
        changes.append(Change("schedule", spec.get("schedule"), want.schedule))
    if containers[0].get("image") != want.image:
        changes.append(Change("image", containers[0].get("image"), want.image))
    if not changes:  # endpoint, bucket, prefix, key or credentials' Secret
        changes.append(Change("settings", annotations.get("hk8s.io/checksum"), want.checksum))
    return [Operation("update", "etcd backup", name,
                      reason="backup settings in cluster.yaml changed",
                      changes=tuple(changes))]  # fmt: skip


async def converge_backup(
    kube: KubernetesAPI,
    config: ClusterConfig,
    waiter: Waiter,
    *,
    credentials: Credentials | None,
) -> None:
    """Apply the backup objects, or delete them when cluster.yaml has no ``backup:``."""
    from hk8s.providers.k8s import (
        BACKUP_CREDENTIALS_SECRET,
        BACKUP_CRONJOB,
        BACKUP_TALOS_ACCOUNT,
        render_backup_manifests,
    )

    if config.backup is None:
        if await observe_backup(kube) is None:
            return  # never had backups (one read, not three deletes, per create)
        gone = [
            await kube.delete("batch/v1", "CronJob", BACKUP_CRONJOB, namespace=BACKUP_NAMESPACE),
            await kube.delete("talos.dev/v1alpha1", "ServiceAccount", BACKUP_TALOS_ACCOUNT,
                              namespace=BACKUP_NAMESPACE),
            await kube.delete("v1", "Secret", BACKUP_CREDENTIALS_SECRET,
                              namespace=BACKUP_NAMESPACE),
        ]  # fmt: skip
        if any(gone):
            waiter.info("backup", "removed the etcd backup CronJob (no backup: in cluster.yaml)")
        return
    title = f"etcd backups on schedule {config.backup.schedule!r}"
    waiter.step("backup", title)
    backup = render_backup_manifests(config, credentials=credentials)
    # Talos registers serviceaccounts.talos.dev with its bootstrap manifests once a control
    # plane runs with kubernetesTalosAPIAccess (just applied): until the CRD is established,
    # applying the account would fail with 404.
    await kube.wait_served("talos.dev/v1alpha1", "ServiceAccount")
    await kube.apply(backup.objects)
    if config.backup.credentials.secret is not None:
        # hk8s' own Secret from an earlier run is not used any more: no stale key stays.
        await kube.delete("v1", "Secret", BACKUP_CREDENTIALS_SECRET, namespace=BACKUP_NAMESPACE)
    waiter.done("backup", title, f"cronjob {BACKUP_CRONJOB}")


def prunable(
    objects: Sequence[StoredObject], retention: BackupRetention | None, *, now: dt.datetime
) -> list[StoredObject]:
    """The backups retention deletes: beyond the newest ``keep``, or older than ``max_age``;
    never the newest one. Oldest first."""
    if retention is None or not objects:
        return []
    newest_first = sorted(objects, key=lambda o: (o.last_modified, o.key), reverse=True)
    doomed = []
    limit = None if retention.max_age is None else dt.timedelta(
        hours=parse_duration(retention.max_age))  # fmt: skip
    for index, obj in enumerate(newest_first):
        if index == 0:
            continue  # the newest backup is kept whatever the rules say
        too_many = retention.keep is not None and index >= retention.keep
        too_old = limit is not None and now - obj.last_modified > limit
        if too_many or too_old:
            doomed.append(obj)
    return list(reversed(doomed))
