"""``backup:`` in cluster.yaml: scheduled, encrypted etcd backups to S3-compatible storage.

``create`` turns it into talos-backup's CronJob (``providers/k8s`` renders it); ``hk8s etcd
backups`` lists and prunes what it stored, ``hk8s etcd restore --from s3://...`` brings one
back. Credentials are never values in cluster.yaml: either hk8s reads them from environment
variables (named here) at ``create`` and puts them in a Secret, or the cluster already has a
Secret with them (``credentials.secret``). The age key is public: only the holder of its
identity can read a backup, so the bucket's credentials alone do not expose the cluster.

    backup:
      schedule: "0 * * * *"
      endpoint: https://fsn1.your-objectstorage.com
      bucket: my-cluster-backups
      region: fsn1
      age_public_key: age1...
      retention: {keep: 48, max_age: 14d}
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hk8s.config._fields import invalid
from hk8s.model.bech32 import bech32_decode
from hk8s.model.cron import CronError, parse_cron

__all__ = [
    "BACKUP_NAMESPACE",
    "BackupConfig",
    "BackupCredentials",
    "BackupRetention",
    "parse_duration",
]

# Where the CronJob, its Secrets and the Talos ServiceAccount live; kubernetesTalosAPIAccess
# admits this namespace only (machineconfig).
BACKUP_NAMESPACE = "kube-system"
# S3 bucket naming rules (AWS "General purpose bucket naming rules"; Hetzner's are the same).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = re.compile(r"^(?P<n>[1-9][0-9]*)(?P<unit>[hdw])$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
_REGION = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_schedule(value: str) -> str:
    try:
        parse_cron(value)
    except CronError as exc:
        raise invalid(
            f"{value!r} is not a cron schedule: {exc}", 'e.g. "0 * * * *" (hourly, UTC)'
        ) from None
    return value


def _check_endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise invalid(
            f"{value!r} is not an S3 endpoint URL",
            "e.g. https://fsn1.your-objectstorage.com (Hetzner Object Storage in fsn1)",
        )
    if parts.path not in ("", "/"):
        raise invalid(
            f"{value!r} has a path; the bucket goes in `bucket` and folders in `prefix`",
            f"endpoint: {parts.scheme}://{parts.netloc}",
        )
    try:
        port = parts.port
    except ValueError:
        raise invalid(f"{value!r} has a port that is not a number", "e.g. :9000") from None
    # The scheme's default port is what HTTP clients leave out of the Host header, which
    # SigV4 signs: keep the two the same.
    default = {"https": 443, "http": 80}[parts.scheme]
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def _check_bucket(value: str) -> str:
    if not _BUCKET.match(value) or ".." in value:
        raise invalid(
            f"{value!r} is not a bucket name",
            "3-63 characters: lower-case letters, digits, '-' and '.', starting and ending "
            "with a letter or digit",
        )
    return value


def _check_prefix(value: str) -> str:
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise invalid(
            f"{value!r}: a prefix has no leading, trailing or double '/'",
            "e.g. prefix: clusters/demo",
        )
    return value


def _check_age_key(value: str) -> str:
    hint = "the public key `age-keygen` prints (age1...); keep the AGE-SECRET-KEY-1 line secret"
    if value.upper().startswith("AGE-SECRET-KEY-1"):
        raise invalid("this is an age secret key; cluster.yaml takes the public key", hint)
    try:
        hrp, data = bech32_decode(value)
    except ValueError as exc:
        raise invalid(f"{value!r} is not an age public key: {exc}", hint) from None
    if hrp != "age" or len(data) != 32 or value != value.lower():
        raise invalid(f"{value!r} is not an age X25519 public key", hint)
    return value


def parse_duration(value: str) -> int:
    """``36h`` / ``14d`` / ``2w`` -> hours; ValueError otherwise."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration")
    return int(match["n"]) * _UNIT_HOURS[match["unit"]]


def _check_duration(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError:
        raise invalid(
            f"{value!r} is not a duration", "a whole number of h, d or w: 36h, 14d, 2w"
        ) from None
    return value


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise invalid(f"{value!r} is not an environment variable name", "e.g. AWS_ACCESS_KEY_ID")
    return value


def _check_secret_name(value: str) -> str:
    if not _SECRET_NAME.match(value) or len(value) > 253:
        raise invalid(f"{value!r} is not a Secret name", "lower-case letters, digits and '-'")
    return value


def _check_region(value: str) -> str:
    if not _REGION.match(value):
        raise invalid(f"{value!r} is not a region", "e.g. fsn1 (Hetzner) or eu-central-1 (AWS)")
    return value


Schedule = Annotated[str, AfterValidator(_check_schedule)]
Endpoint = Annotated[
    str, AfterValidator(_check_endpoint), Field(json_schema_extra={"format": "uri"})
]
Bucket = Annotated[
    str, AfterValidator(_check_bucket), Field(json_schema_extra={"pattern": _BUCKET.pattern})
]
Prefix = Annotated[str, AfterValidator(_check_prefix)]
AgeKey = Annotated[
    str, AfterValidator(_check_age_key),
    Field(json_schema_extra={"pattern": r"^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$"}),
]  # fmt: skip
Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": r"^[1-9][0-9]*[hdw]$"}),
]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
SecretName = Annotated[str, AfterValidator(_check_secret_name)]
Region = Annotated[str, AfterValidator(_check_region)]


class BackupRetention(_Model):
    """Which backups ``hk8s etcd backups --prune`` deletes; the newest one is always kept."""

    keep: int | None = Field(default=None, ge=1, description="Keep the newest N backups.")
    max_age: Duration | None = Field(
        default=None, description="Delete backups older than this (36h, 14d, 2w)."
    )

    @model_validator(mode="after")
    def _one_rule(self) -> BackupRetention:
        if self.keep is None and self.max_age is None:
            raise invalid(
                "retention needs `keep`, `max_age` or both",
                "e.g. retention: {keep: 48, max_age: 14d}; leave `retention` out to keep all",
            )
        return self


class BackupCredentials(_Model):
    """Where the S3 access key comes from; never the values themselves."""

    access_key_id_env: EnvName = Field(
        default="AWS_ACCESS_KEY_ID",
        description="Environment variable hk8s reads the access key id from.",
    )
    secret_access_key_env: EnvName = Field(
        default="AWS_SECRET_ACCESS_KEY",
        description="Environment variable hk8s reads the secret access key from.",
    )
    secret: SecretName | None = Field(
        default=None,
        description="An existing Secret in kube-system with AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY: create then reads no environment variables (hk8s etcd "
        "backups and restore still do).",
    )


class BackupConfig(_Model):
    """Scheduled etcd backups by talos-backup, age-encrypted, to S3-compatible storage."""

    schedule: Schedule = Field(description='Cron schedule in UTC, e.g. "0 * * * *".')
    endpoint: Endpoint = Field(
        description="S3 endpoint, e.g. https://fsn1.your-objectstorage.com (Hetzner)."
    )
    bucket: Bucket
    region: Region = Field(description="The endpoint's region (Hetzner: the location, fsn1).")
    prefix: Prefix | None = Field(
        default=None, description="Key prefix (folder); defaults to the cluster's name."
    )
    age_public_key: AgeKey = Field(description="Backups are encrypted to this age recipient.")
    retention: BackupRetention | None = Field(
        default=None, description="What `hk8s etcd backups --prune` deletes; none: keep all."
    )
    credentials: BackupCredentials = Field(default_factory=BackupCredentials)
