"""Scheduled backups from the operator's side: S3 credentials from the environment, listing
and pruning (``hk8s etcd backups``), and fetching one for ``hk8s etcd restore --from s3://``.

Credentials are read from the environment variables cluster.yaml's ``backup.credentials``
names (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` by default), checked before the
first request: a missing one is a usage error (exit 2) naming the variable. The age identity
that decrypts a backup comes from ``--identity FILE`` or ``HK8S_AGE_IDENTITY`` (the
``AGE-SECRET-KEY-1...`` line itself); it is never written anywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hk8s.errors import UsageError

if TYPE_CHECKING:
    from hk8s.config import BackupConfig, ClusterConfig
    from hk8s.pki.sigv4 import Credentials
    from hk8s.providers.s3 import S3Client

__all__ = [
    "AGE_IDENTITY_ENV",
    "create_backup_credentials",
    "fetch_backup",
    "require_backup",
    "s3_client",
]

AGE_IDENTITY_ENV = "HK8S_AGE_IDENTITY"


def require_backup(config: ClusterConfig) -> BackupConfig:
    if config.backup is None:
        raise UsageError(
            f"cluster {config.name}'s cluster.yaml has no backup section",
            hint="add backup: (schedule, endpoint, bucket, region, age_public_key); see "
            "docs/backups.md",
        )
    return config.backup


def _credentials(backup: BackupConfig, purpose: str) -> Credentials:
    from hk8s.pki.sigv4 import Credentials

    names = (backup.credentials.access_key_id_env, backup.credentials.secret_access_key_env)
    values = [os.environ.get(name, "").strip() for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: {purpose} "
            "reads the S3 credentials from the environment",
            hint=f"export {names[0]} and {names[1]} (the variables backup.credentials names)",
        )
    return Credentials(values[0], values[1])


def create_backup_credentials(config: ClusterConfig) -> Credentials | None:
    """The credentials ``create`` puts in the CronJob's Secret, or None when there is no
    ``backup:`` or it names an existing Secret. Checked before ``create`` changes anything."""
    if config.backup is None or config.backup.credentials.secret is not None:
        return None
    return _credentials(config.backup, "create (backup: in cluster.yaml)")


def s3_client(config: ClusterConfig, purpose: str) -> S3Client:
    from hk8s.model import SystemClock
    from hk8s.providers.s3 import S3Client

    backup = require_backup(config)
    names = f"{backup.credentials.access_key_id_env}/{backup.credentials.secret_access_key_env}"
    return S3Client(
        backup.endpoint,
        backup.region,
        _credentials(backup, purpose),
        clock=SystemClock(),
        credentials_source=f"the S3 credentials in {names}",
    )


def _identity(identity_file: Path | None) -> str:
    if identity_file is not None:
        try:
            return identity_file.read_text()
        except OSError as exc:
            raise UsageError(
                f"cannot read the age identity {identity_file}: {exc.strerror}",
                hint="pass the file age-keygen wrote (AGE-SECRET-KEY-1...)",
            ) from None
    text = os.environ.get(AGE_IDENTITY_ENV, "")
    if not text.strip():
        raise UsageError(
            "the backup is encrypted and no age identity was given",
            hint=f"pass --identity FILE (age-keygen's key file) or set {AGE_IDENTITY_ENV} "
            "to its AGE-SECRET-KEY-1... line",
        )
    return text


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); a usage error otherwise."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise UsageError(
            f"{url!r} is not an s3://bucket/key URL",
            hint="`hk8s etcd backups -f <config>` lists the backups with their keys",
        )
    return parts.netloc, key


async def fetch_backup(
    config: ClusterConfig, url: str, identity_file: Path | None, workdir: Path
) -> Path:
    """Download ``url`` from the backup endpoint, decrypt it (``.age``), and write the etcd
    snapshot to a new file in ``workdir`` (mode 0600); usage errors come before the download
    where they can."""
    from hk8s.pki.age import AgeError, decrypt, parse_identity

    bucket, key = parse_s3_url(url)
    if key.endswith((".zst", ".zst.age")):
        raise UsageError(
            f"{key} is zstd-compressed (talos-backup's ENABLE_COMPRESSION), which hk8s does "
            "not read",
            hint="decompress it yourself (age -d, then zstd -d) and pass the file to --from",
        )
    identities = None
    if key.endswith(".age"):
        try:
            identities = parse_identity(_identity(identity_file))
        except AgeError as exc:
            raise UsageError(f"the age identity is not usable: {exc}") from None
    client = s3_client(config, "restore --from s3://")
    data = await client.get_object(bucket, key)
    if identities is not None:
        try:
            data = decrypt(data, identities)
        except AgeError as exc:
            raise UsageError(
                f"{url} does not decrypt: {exc}",
                hint="use the identity whose public key is backup.age_public_key",
            ) from None
    fd, name = tempfile.mkstemp(prefix="etcd-", suffix=".db", dir=workdir)
    with os.fdopen(fd, "wb") as out:  # mkstemp: mode 0600
        out.write(data)
    return Path(name)
