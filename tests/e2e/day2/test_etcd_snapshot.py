"""``hk8s etcd snapshot`` end to end: what the cluster holds is in the file, verified, 0600."""

from __future__ import annotations

import hashlib
import json
import stat
from typing import TYPE_CHECKING

from hk8s.model.etcd_snapshot import inspect_snapshot_file, snapshot_keys

if TYPE_CHECKING:
    from .conftest import Day2World


def test_snapshot_holds_the_latest_objects(world: Day2World) -> None:
    revision = world.put_configmap("settings", {"colour": "blue"})
    dest = world.dir / "backups" / "etcd.db"
    dest.parent.mkdir()
    result = world.hk8s("etcd", "snapshot", "--to", str(dest), "-o", "json")
    report = json.loads(result.stdout)
    data = dest.read_bytes()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert report["size"] == len(data)
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["revision"] == inspect_snapshot_file(dest).revision >= revision
    assert report["node"] in {"demo-cp-1", "demo-cp-2", "demo-cp-3"}
    stored = {kv.key: kv for kv in snapshot_keys(data)}
    settings = stored[b"/registry/configmaps/default/settings"]
    # kube-apiserver stores core objects as protobuf ("k8s\0" + runtime.Unknown): the map's
    # key and value are there as plain strings.
    assert settings.value.startswith(b"k8s\x00")
    assert b"colour" in settings.value and b"blue" in settings.value
    assert settings.mod_revision == revision
    assert [p.name for p in dest.parent.iterdir()] == ["etcd.db"]  # no partial file left

    # Text for people, a default name beside the config when --to is a directory.
    text = world.hk8s("etcd", "snapshot", "--to", str(dest.parent))
    assert "revision" in text.stdout and "sha256" in text.stdout and "(mode 0600)" in text.stdout
    [named] = [p for p in dest.parent.iterdir() if p.name != "etcd.db"]
    assert named.name.startswith("demo-etcd-") and named.suffix == ".db"
    assert str(named) in text.stdout


def test_a_missing_directory_is_refused_before_anything_runs(world: Day2World) -> None:
    result = world.hk8s("etcd", "snapshot", "--to", str(world.dir / "nope" / "x.db"), check=False)
    assert result.returncode == 2, result.stderr
    assert "is not a directory" in result.stderr
