"""etcd snapshots as hk8s writes (simulator) and reads (``hk8s etcd snapshot``) them.

Upstream is the oracle: ``tools/go/bboltcheck`` opens the file with go.etcd.io/bbolt, runs
bbolt's own consistency check and verifies the SHA-256 trailer as ``etcdutl snapshot restore``
does; what it reads must be exactly what hk8s wrote.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from hk8s.model.bbolt import BboltError, read_bbolt, write_bbolt
from hk8s.model.etcd_snapshot import (
    KeyValue,
    SnapshotError,
    SnapshotMember,
    build_snapshot,
    inspect_snapshot,
    inspect_snapshot_file,
    snapshot_keys,
)

ROOT = Path(__file__).resolve().parents[3]


def keys(count: int, size: int = 100) -> list[KeyValue]:
    return [
        KeyValue(f"/registry/configmaps/default/cm-{i}".encode(), b"v" * size * i, i + 2, i + 2)
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def bboltcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("go") / "bboltcheck"
    subprocess.run(
        ["go", "-C", str(ROOT / "tools" / "go"), "build", "-o", str(binary), "./bboltcheck"],
        check=True,
        timeout=600,
    )
    return binary


def upstream_read(binary: Path, path: Path) -> dict[str, object]:
    done = subprocess.run([str(binary), str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_bbolt_accepts_the_snapshot_and_reads_what_was_written(
    bboltcheck: Path, tmp_path: Path
) -> None:
    written = keys(300, size=40)  # values up to 12 KB: leaf pages with overflow pages
    member = SnapshotMember(0xABC, "demo-cp-1", ("https://127.1.0.2:2380",))
    blob = build_snapshot(written, members=[member], consistent_index=42, term=3)
    path = tmp_path / "etcd.db"
    path.write_bytes(blob)
    report = upstream_read(bboltcheck, path)
    assert report["trailer"] is True
    buckets = report["buckets"]
    assert isinstance(buckets, dict)
    assert set(buckets) >= {"key", "meta", "members", "cluster", "lease", "alarm"}
    ours = read_bbolt(blob[:-32])
    for name, items in ours.items():
        assert buckets[name.decode()] == {k.hex(): v.hex() for k, v in items}
    assert len(buckets["key"]) == 300
    assert buckets["meta"][b"consistent_index".hex()] == (42).to_bytes(8, "big").hex()


def test_status_reports_revision_keys_and_sha256_like_etcdutl() -> None:
    blob = build_snapshot(keys(5))
    status = inspect_snapshot(blob)
    assert status.revision == 6  # the last key's main revision
    assert status.total_keys == 5 + 3  # keys + meta(consistent_index, term) + clusterVersion
    assert status.size == len(blob)
    assert status.sha256 == hashlib.sha256(blob).hexdigest()
    assert len(blob) % 512 == 32  # whole pages plus etcd's trailer


def test_keys_round_trip_through_a_file(tmp_path: Path) -> None:
    written = keys(20)
    path = tmp_path / "s.db"
    path.write_bytes(build_snapshot(written))
    assert inspect_snapshot_file(path).revision == 21
    assert sorted(snapshot_keys(path.read_bytes()), key=lambda kv: kv.key) == sorted(
        written, key=lambda kv: kv.key
    )


def test_an_empty_keyspace_has_revision_zero() -> None:
    assert inspect_snapshot(build_snapshot([])).revision == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:4096] + b"\0" + b[4097:], "trailer does not match"),
        (lambda b: b"x" * len(b), "trailer does not match"),
    ],
)
def test_a_damaged_snapshot_is_refused(damage: object, message: str) -> None:
    blob = build_snapshot(keys(3))
    assert callable(damage)
    with pytest.raises(SnapshotError, match=message):
        inspect_snapshot(damage(blob))


def test_a_file_with_a_valid_trailer_but_no_database_is_refused() -> None:
    junk = b"\1" * 4096
    with pytest.raises(SnapshotError, match="not a readable etcd database"):
        inspect_snapshot(junk + hashlib.sha256(junk).digest())


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e.db").write_bytes(b"")
    with pytest.raises(SnapshotError, match="empty"):
        inspect_snapshot_file(tmp_path / "e.db")


def test_bbolt_reader_prefers_the_newer_meta_and_survives_a_damaged_first_meta() -> None:
    db = bytearray(write_bbolt({b"key": [(b"a", b"1")]}))
    db[16] ^= 0xFF  # page 0's magic
    assert read_bbolt(bytes(db))[b"key"] == [(b"a", b"1")]
    db[4096 + 16] ^= 0xFF  # and page 1's
    with pytest.raises(BboltError, match="no valid bbolt meta"):
        read_bbolt(bytes(db))


def test_hk8s_reads_what_bbolt_writes(bboltcheck: Path, tmp_path: Path) -> None:
    """Branch pages, inline buckets and preallocated space, as a real etcd member's file has."""
    path = tmp_path / "upstream.db"
    subprocess.run([str(bboltcheck), "write", str(path)], check=True, timeout=60)
    buckets = read_bbolt(path.read_bytes())
    assert len(buckets[b"key"]) == 5000
    assert buckets[b"key"][0][0] == b"%016x_%016x" % (2, 0)
    assert buckets[b"key"][-1][0] == b"%016x_%016x" % (5001, 0)
    assert len(buckets[b"key"][299][1]) == 299
    assert buckets[b"meta"] == [(b"term", (3).to_bytes(8, "big"))]
