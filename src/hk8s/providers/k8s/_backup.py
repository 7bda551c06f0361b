"""The in-cluster part of ``backup:``: talos-backup's CronJob, its Talos ServiceAccount and
the S3 credentials Secret, rendered from ``manifests/etcd-backup*.yaml``.

The CronJob carries a checksum of everything rendered into it, so ``plan`` can tell an
unchanged backup from a changed one without comparing Kubernetes' defaulted fields. The S3
secret access key is placed only in the Secret, as a ``RedactedStr``.

>>> backup = render_backup_manifests(cluster, credentials=Credentials("AKID", "secret"))
>>> [o["kind"] for o in backup.objects]
['Secret', 'ServiceAccount', 'CronJob']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hk8s.config import BACKUP_NAMESPACE, TALOS_BACKUP_IMAGE
from hk8s.errors import UsageError
from hk8s.providers.k8s._render import RedactedStr, _render

if TYPE_CHECKING:
    from hk8s.config import ClusterConfig
    from hk8s.pki.sigv4 import Credentials

__all__ = [
    "BACKUP_CREDENTIALS_SECRET",
    "BACKUP_CRONJOB",
    "BACKUP_TALOS_ACCOUNT",
    "BackupManifests",
    "backup_prefix",
    "render_backup_manifests",
]

BACKUP_CRONJOB = "hk8s-etcd-backup"
BACKUP_TALOS_ACCOUNT = "hk8s-etcd-backup"
BACKUP_CREDENTIALS_SECRET = "hk8s-etcd-backup-s3"


def backup_prefix(cluster: ClusterConfig) -> str:
    """Where the cluster's backups go in the bucket: ``backup.prefix`` or the cluster name
    (talos-backup's own default, ``S3_PREFIX`` unset -> ``CLUSTER_NAME``)."""
    assert cluster.backup is not None
    return cluster.backup.prefix or cluster.name


@dataclass(frozen=True)
class BackupManifests:
    objects: tuple[dict[str, Any], ...]
    checksum: str
    schedule: str
    image: str
    namespace: str = BACKUP_NAMESPACE


def render_backup_manifests(
    cluster: ClusterConfig, *, credentials: Credentials | None, image: str = TALOS_BACKUP_IMAGE
) -> BackupManifests:
    """The objects ``create`` applies for ``backup:`` (the Secret only with ``credentials``:
    without them ``backup.credentials.secret`` names an existing one)."""
    backup = cluster.backup
    if backup is None:
        raise UsageError("cluster.yaml has no backup section")
    secret_name = backup.credentials.secret or BACKUP_CREDENTIALS_SECRET
    if backup.credentials.secret is None and credentials is None:
        raise UsageError(
            "no S3 credentials for the backup CronJob",
            hint=f"export {backup.credentials.access_key_id_env} and "
            f"{backup.credentials.secret_access_key_env}, or name an existing Secret in "
            "backup.credentials.secret",
        )
    values = {
        "cluster": cluster.name,
        "cronjob": BACKUP_CRONJOB,
        "talos_account": BACKUP_TALOS_ACCOUNT,
        "schedule": backup.schedule,
        "image": image,
        "endpoint": backup.endpoint,
        "bucket": backup.bucket,
        "region": backup.region,
        "prefix": backup_prefix(cluster),
        "age_public_key": backup.age_public_key,
        "credentials": secret_name,
    }
    # The checksum covers the values, not the key: a rotated key is applied by create anyway.
    checksum = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    account, cronjob = _render("etcd-backup.yaml", checksum=checksum, **values)
    objects = [account, cronjob]
    if backup.credentials.secret is None:
        assert credentials is not None
        [secret] = _render("etcd-backup-s3.yaml", cluster=cluster.name)
        secret["stringData"] = {
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": RedactedStr(credentials.secret_access_key),
        }
        objects.insert(0, secret)
    return BackupManifests(tuple(objects), checksum, backup.schedule, image)
