"""Retention of scheduled backups (``hk8s etcd backups --prune``): what goes, what stays."""

from __future__ import annotations

import datetime as dt

from hk8s.config import BackupRetention
from hk8s.controller._backup import prunable
from hk8s.providers.s3 import StoredObject

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def hourly(count: int) -> list[StoredObject]:
    """``count`` backups, one an hour, the newest an hour ago (listed in key order)."""
    out = []
    for i in range(1, count + 1):
        when = NOW - dt.timedelta(hours=i)
        out.append(StoredObject(f"demo/demo-{when:%Y-%m-%dT%H:%M:%SZ}.snap.age", 100, when))
    return sorted(out, key=lambda o: o.key)


def keys(objects: list[StoredObject]) -> list[str]:
    return [o.key for o in objects]


def test_keep_deletes_all_but_the_newest_n_oldest_first() -> None:
    backups = hourly(10)
    doomed = prunable(backups, BackupRetention(keep=3), now=NOW)
    assert len(doomed) == 7
    assert keys(doomed) == sorted(keys(doomed))  # oldest first
    kept = set(keys(backups)) - set(keys(doomed))
    assert kept == set(keys(sorted(backups, key=lambda o: o.last_modified)[-3:]))


def test_max_age_deletes_older_ones() -> None:
    doomed = prunable(hourly(50), BackupRetention(max_age="36h"), now=NOW)
    assert len(doomed) == 50 - 36
    assert all(NOW - o.last_modified > dt.timedelta(hours=36) for o in doomed)


def test_both_rules_delete_what_either_says() -> None:
    assert len(prunable(hourly(50), BackupRetention(keep=10, max_age="2w"), now=NOW)) == 40
    assert len(prunable(hourly(50), BackupRetention(keep=48, max_age="1d"), now=NOW)) == 26


def test_the_newest_backup_survives_even_when_too_old() -> None:
    """A cluster whose backups stopped weeks ago must not lose its last one to pruning."""
    stale = [StoredObject("demo/old", 1, NOW - dt.timedelta(days=60)),
             StoredObject("demo/older", 1, NOW - dt.timedelta(days=61))]  # fmt: skip
    assert keys(prunable(stale, BackupRetention(max_age="14d"), now=NOW)) == ["demo/older"]


def test_no_retention_keeps_everything() -> None:
    assert prunable(hourly(5), None, now=NOW) == []
