"""The simulated world's S3-compatible object storage (``_store``)."""

from __future__ import annotations

from hk8s.sim.s3._store import S3Object, S3Store

__all__ = ["S3Object", "S3Store"]
