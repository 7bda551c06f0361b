"""The cluster's etcd keyspace, for the Talos side's snapshot, wipe and restore.

A Talos control plane streams ``etcd snapshot`` from its etcd member, loses the keyspace
when every member's data is wiped, and starts etcd from an uploaded snapshot on
``bootstrap --recover-from``. The world's one etcd is the real one under the API server, read
and written through its gRPC gateway (JSON, keys and values base64: ``POST /v3/kv/range``,
``/v3/kv/deleterange``, ``/v3/kv/put``). A restore replaces the keyspace in place (delete
range, then one put per key) rather than restarting etcd: the API server's watch cache sees
the deletions and puts as events and serves the restored objects, as a real API server does
after it reconnects to a restored etcd.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import TYPE_CHECKING, Any

from hk8s.model.etcd_snapshot import KeyValue

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EtcdKeyspace"]

_ALL = base64.b64encode(b"\0").decode()  # key "\0" with range_end "\0": every key
_TIMEOUT = 10.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class EtcdKeyspace:
    """``keys()``, ``wipe()`` and ``restore(keys)`` on etcd at ``url`` (its client URL)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            data = json.loads(response.read() or b"{}")
        assert isinstance(data, dict)
        return data

    def keys(self) -> list[KeyValue]:
        found = self._call("/v3/kv/range", {"key": _ALL, "range_end": _ALL})
        return [
            KeyValue(
                key=base64.b64decode(kv["key"]),
                value=base64.b64decode(kv.get("value", "")),
                create_revision=int(kv.get("create_revision", 0)),
                mod_revision=int(kv.get("mod_revision", 0)),
                version=int(kv.get("version", 1)),
            )
            for kv in found.get("kvs") or []
        ]

    def wipe(self) -> None:
        self._call("/v3/kv/deleterange", {"key": _ALL, "range_end": _ALL})

    def restore(self, keys: Sequence[KeyValue]) -> None:
        self.wipe()
        for kv in keys:
            self._call("/v3/kv/put", {"key": _b64(kv.key), "value": _b64(kv.value)})
