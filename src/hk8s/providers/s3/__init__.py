"""S3-compatible object storage: where scheduled etcd backups are listed, read and pruned."""

from __future__ import annotations

from hk8s.providers.s3._client import S3Client, StoredObject

__all__ = ["S3Client", "StoredObject"]
