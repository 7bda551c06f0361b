"""etcd snapshots: the member's bbolt database followed by a SHA-256 of it.

etcd's ``Maintenance.Snapshot`` streams the backend database and then the 32-byte SHA-256 of
everything it sent (etcd ``server/etcdserver/api/v3rpc/maintenance.go``); Talos' ``EtcdSnapshot``
passes that stream on unchanged. ``etcdutl snapshot restore`` recognises the trailer by size
(``hasChecksum``: ``size % 512 == 32``, bbolt files being whole pages) and refuses a mismatch;
``etcdutl snapshot status`` reports the revision as the main revision of the last key of the
``key`` bucket (``etcdutl/snapshot/v3_snapshot.go``). ``inspect_snapshot`` does both checks, so a
truncated or corrupted download is never reported as a good backup.

Keys in the ``key`` bucket are revisions: 8-byte big-endian main revision, ``_``, 8-byte sub
revision, and a trailing ``t`` for a deletion (etcd ``server/storage/mvcc/revision.go``); values
are ``mvccpb.KeyValue`` protobuf messages.

>>> blob = build_snapshot([KeyValue(b"/registry/a", b"{}", create_revision=5, mod_revision=7)])
>>> inspect_snapshot(blob).revision
7
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hk8s.model.bbolt import BboltError, read_bbolt, write_bbolt

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from hk8s.model.bbolt import Buffer

__all__ = [
    "KeyValue",
    "SnapshotError",
    "SnapshotMember",
    "SnapshotStatus",
    "build_snapshot",
    "inspect_snapshot",
    "inspect_snapshot_file",
    "snapshot_keys",
]

_TRAILER = hashlib.sha256().digest_size
# The buckets etcd 3.5 creates (server/storage/schema/bucket.go).
_BUCKETS = (
    b"alarm",
    b"auth",
    b"authRoles",
    b"authUsers",
    b"cluster",
    b"key",
    b"lease",
    b"members",
    b"members_removed",
    b"meta",
)


class SnapshotError(ValueError):
    """The bytes are not a complete, intact etcd snapshot."""


@dataclass(frozen=True)
class KeyValue:
    """One key as ``mvccpb.KeyValue`` holds it."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int = 1


@dataclass(frozen=True)
class SnapshotMember:
    id: int
    name: str
    peer_urls: tuple[str, ...]


@dataclass(frozen=True)
class SnapshotStatus:
    """What ``etcdutl snapshot status`` reports, plus the verified SHA-256 of the file."""

    size: int
    revision: int
    total_keys: int
    sha256: str


# ------------------------------------------------------------------ mvccpb.KeyValue encoding
def _varint(value: int) -> bytes:
    value &= 0xFFFFFFFFFFFFFFFF  # int64 fields are encoded as their two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode(kv: KeyValue) -> bytes:
    """``mvccpb.KeyValue``: key=1, create_revision=2, mod_revision=3, version=4, value=5."""
    out = bytearray()
    out += b"\x0a" + _varint(len(kv.key)) + kv.key
    for tag, number in ((0x10, kv.create_revision), (0x18, kv.mod_revision), (0x20, kv.version)):
        if number:
            out += bytes([tag]) + _varint(number)
    if kv.value:
        out += b"\x2a" + _varint(len(kv.value)) + kv.value
    return bytes(out)


def _decode(data: bytes) -> KeyValue:
    fields: dict[int, bytes | int] = {}
    i = 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            fields[number], i = _read_varint(data, i)
        elif wire == 2:
            size, i = _read_varint(data, i)
            fields[number], i = data[i : i + size], i + size
        else:
            raise SnapshotError(f"unexpected protobuf wire type {wire} in a key's value")

    def num(n: int) -> int:
        value = fields.get(n, 0)
        return value if isinstance(value, int) else 0

    def raw(n: int) -> bytes:
        value = fields.get(n, b"")
        return value if isinstance(value, bytes) else b""

    return KeyValue(raw(1), raw(5), num(2), num(3), num(4))


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise SnapshotError("truncated protobuf varint in a key's value")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def _revision_key(main: int, sub: int = 0) -> bytes:
    return struct.pack(">Q", main) + b"_" + struct.pack(">Q", sub)


# ----------------------------------------------------------------------------- snapshots
def build_snapshot(
    keys: Iterable[KeyValue],
    *,
    members: Sequence[SnapshotMember] = (),
    consistent_index: int = 1,
    term: int = 1,
    cluster_version: str = "3.5.0",
) -> bytes:
    """A snapshot holding ``keys`` (each at its ``mod_revision``), as etcd 3.5 would stream it."""
    buckets: dict[bytes, list[tuple[bytes, bytes]]] = {name: [] for name in _BUCKETS}
    subs: dict[int, int] = {}
    for kv in keys:
        sub = subs.get(kv.mod_revision, 0)
        subs[kv.mod_revision] = sub + 1
        buckets[b"key"].append((_revision_key(kv.mod_revision, sub), _encode(kv)))
    for member in members:
        # server/etcdserver/api/membership/store.go: key = ID in hex, value = RaftAttributes
        # and Attributes as JSON.
        value = {"id": member.id, "peerURLs": list(member.peer_urls), "name": member.name}
        buckets[b"members"].append((f"{member.id:x}".encode(), json.dumps(value).encode()))
    buckets[b"meta"] += [
        (b"consistent_index", struct.pack(">Q", consistent_index)),
        (b"term", struct.pack(">Q", term)),
    ]
    buckets[b"cluster"].append((b"clusterVersion", cluster_version.encode()))
    db = write_bbolt(buckets)
    return db + hashlib.sha256(db).digest()


def _split(blob: Buffer) -> memoryview:
    if len(blob) % 512 != _TRAILER:
        raise SnapshotError(
            f"{len(blob)} bytes is not a database of whole pages plus a SHA-256 trailer: "
            "the snapshot is truncated or is not an etcd snapshot"
        )
    view = memoryview(blob)
    db, trailer = view[:-_TRAILER], bytes(view[-_TRAILER:])
    if hashlib.sha256(db).digest() != trailer:
        raise SnapshotError("the snapshot's SHA-256 trailer does not match its contents")
    return db


def _buckets(blob: Buffer) -> dict[bytes, list[tuple[bytes, bytes]]]:
    try:
        return read_bbolt(_split(blob))
    except BboltError as exc:
        raise SnapshotError(f"the snapshot is not a readable etcd database: {exc}") from exc


def inspect_snapshot(blob: Buffer) -> SnapshotStatus:
    """Verify the trailer and read the revision, as ``etcdutl snapshot status`` does."""
    buckets = _buckets(blob)
    if b"key" not in buckets:
        raise SnapshotError("the snapshot has no 'key' bucket: it is not an etcd database")
    keys = buckets[b"key"]
    revision = struct.unpack(">Q", keys[-1][0][:8])[0] if keys else 0
    return SnapshotStatus(
        size=len(blob),
        revision=revision,
        total_keys=sum(len(items) for items in buckets.values()),
        sha256=hashlib.sha256(memoryview(blob)).hexdigest(),
    )


def inspect_snapshot_file(path: Path) -> SnapshotStatus:
    """``inspect_snapshot`` on a file, mapped rather than read (snapshots reach gigabytes)."""
    import mmap

    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            raise SnapshotError("the snapshot is empty")
        # Not closed explicitly: a failure's traceback may still hold views of the map, and
        # closing it then raises BufferError. It goes with its last reference.
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return inspect_snapshot(mapped)


def snapshot_keys(blob: Buffer) -> list[KeyValue]:
    """The live keys of a snapshot at its revision (what a restore brings back)."""
    latest: dict[bytes, KeyValue | None] = {}
    for rev, value in _buckets(blob).get(b"key", []):
        tombstone = rev.endswith(b"t")
        kv = _decode(value)
        latest[kv.key] = None if tombstone else kv
    return [kv for kv in latest.values() if kv is not None]
